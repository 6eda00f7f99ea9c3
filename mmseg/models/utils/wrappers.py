"""Tensor helpers shared by the segmentor, the decode heads and the data preprocessor."""
import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F


def resize(inputs: torch.Tensor,
           size: Sequence[int],
           mode: str = 'bilinear',
           align_corners: Optional[bool] = False) -> torch.Tensor:
    """Resize a (B, C, H, W) tensor to ``size`` = (H', W'); a no-op when sizes match.

    Args:
        inputs (Tensor): (B, C, H, W).
        size (Sequence[int]): target (H', W').
        mode (str): interpolation mode. Defaults to 'bilinear'.
        align_corners (bool, optional): passed to ``F.interpolate`` for the
            linear modes only. Defaults to False.

    Returns:
        Tensor: (B, C, H', W').
    """
    size = (int(size[0]), int(size[1]))
    if tuple(inputs.shape[-2:]) == size:
        return inputs
    if mode in ('linear', 'bilinear', 'bicubic', 'trilinear'):
        return F.interpolate(inputs, size=size, mode=mode, align_corners=align_corners)
    return F.interpolate(inputs, size=size, mode=mode)


def padded_size(height: int,
                width: int,
                size: Optional[Sequence[int]] = None,
                size_divisor: Optional[int] = None) -> Tuple[int, int]:
    """The (H, W) after padding to at least ``size`` and then to a multiple of ``size_divisor``.

    Args:
        height (int): current height.
        width (int): current width.
        size (Sequence[int], optional): minimum (H, W). Defaults to None.
        size_divisor (int, optional): make both sides multiples of it. Defaults to None.

    Returns:
        tuple[int, int]: the padded (H, W), never smaller than the input.
    """
    if size is not None:
        height, width = max(height, int(size[0])), max(width, int(size[1]))
    if size_divisor:
        height = int(math.ceil(height / size_divisor)) * size_divisor
        width = int(math.ceil(width / size_divisor)) * size_divisor
    return height, width


def pad_right_bottom(tensor: torch.Tensor, height: int, width: int,
                     value: float) -> torch.Tensor:
    """Pad the last two dims of ``tensor`` on the right and bottom to (height, width)."""
    pad_h, pad_w = height - tensor.shape[-2], width - tensor.shape[-1]
    if pad_h < 0 or pad_w < 0:
        raise ValueError(f'cannot pad a tensor of spatial size {tuple(tensor.shape[-2:])} '
                         f'to the smaller size {(height, width)}')
    if pad_h == 0 and pad_w == 0:
        return tensor
    return F.pad(tensor, (0, pad_w, 0, pad_h), value=value)
