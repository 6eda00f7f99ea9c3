"""DACS augmentations as pure functions on batched tensors.

Design follows DACS (Tranheden et al., WACV 2021) as used by DAFormer/HRDA and
the DIFF release (docs/method.md §2.3): ClassMix masks, one-mask mixing of
images/labels/weights, colour jitter and Gaussian blur applied on de-normalised
``[0, 1]`` images. Each random decision is an explicit argument (``draw``,
``generator``) so the functions are deterministic given their inputs.

Conventions: images are ``(B, 3, H, W)`` float RGB, normalised as the data
preprocessor does (``(x - mean) / std`` with mean = std = 127.5, i.e.
``[-1, 1]``); labels are ``(B, H, W)`` or ``(B, 1, H, W)`` int64 train ids
(255 = ignore); masks are ``(1, H, W)`` per image.
"""
import math
from typing import List, Optional, Sequence

import torch
from kornia.augmentation import ColorJitter
from kornia.filters import gaussian_blur2d
from torch import Tensor

from mmseg.models.backbones.diff import host_reads


def _channel_stats(values: Sequence[float], like: Tensor) -> Tensor:
    """Per-channel statistics as a ``(1, C, 1, 1)`` tensor on ``like``'s device."""
    return torch.as_tensor(values, dtype=like.dtype, device=like.device).view(1, -1, 1, 1)


def denormalize(images: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """Undo the preprocessor's normalisation: ``[-1, 1]`` -> ``[0, 1]``.

    Args:
        images (Tensor): (B, 3, H, W) normalised RGB images.
        mean (Sequence[float]): per-channel mean in 0-255 units (RGB order).
        std (Sequence[float]): per-channel std in 0-255 units (RGB order).

    Returns:
        Tensor: (B, 3, H, W) images in ``[0, 1]``.
    """
    return (images * _channel_stats(std, images) + _channel_stats(mean, images)) / 255.0


def renormalize(images: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """Inverse of :func:`denormalize`: ``[0, 1]`` -> normalised."""
    return (images * 255.0 - _channel_stats(mean, images)) / _channel_stats(std, images)


def get_class_masks(labels: Tensor, generator: Optional[torch.Generator] = None) -> List[Tensor]:
    """ClassMix masks: per image, the source pixels of half the batch's classes.

    As in the release, the candidate classes are the unique labels of the WHOLE
    batch (not of the image), and ``ceil(n / 2)`` of the ``n`` candidates are
    drawn without replacement for each image. The ignore label 255 counts as a
    class (inherited quirk): when drawn, the source's ignored pixels are pasted
    and stay ignored in the mixed label; kept for faithfulness because it only
    moves which source pixels are pasted, never assigns them a wrong class.

    Args:
        labels (Tensor): (B, H, W) or (B, 1, H, W) source labels.
        generator (torch.Generator, optional): source of the class draws.

    Returns:
        list[Tensor]: B float masks of shape (1, H, W), 1 where the source is kept.
    """
    labels = labels.squeeze(1) if labels.dim() == 4 else labels
    classes = labels.new_tensor(host_reads.distinct_values('label_classes', labels))
    num_chosen = math.ceil(classes.numel() / 2)
    masks = []
    for label in labels:
        order = torch.randperm(classes.numel(), generator=generator)
        chosen = classes[order[:num_chosen].to(classes.device)]
        masks.append(class_mask(label, chosen).unsqueeze(0))
    return masks


def class_mask(label: Tensor, classes: Tensor) -> Tensor:
    """Float mask (H, W) that is 1 where ``label`` is one of ``classes``."""
    return torch.isin(label, classes).to(torch.float32)


def one_mix(mask: Tensor, source: Tensor, target: Tensor) -> Tensor:
    """Paste ``source`` onto ``target`` where ``mask`` is 1: ``m*src + (1-m)*tgt``.

    Args:
        mask (Tensor): (1, H, W) (or broadcastable) mask in {0, 1}.
        source (Tensor): (C, H, W) or (H, W) source image / label / weight.
        target (Tensor): same shape as ``source``.

    Returns:
        Tensor: the mixed tensor, in the dtype of ``source`` (labels stay int64).
    """
    if mask.dim() == 3 and source.dim() == 2:
        mask = mask[0]
    mixed = mask * source.to(mask.dtype) + (1 - mask) * target.to(mask.dtype)
    return mixed.to(source.dtype)


def color_jitter(images: Tensor,
                 draw: float,
                 strength: float,
                 probability: float,
                 mean: Sequence[float],
                 std: Sequence[float]) -> Tensor:
    """Colour jitter applied, as released, when ``draw > probability``.

    With ``draw ~ U(0, 1)`` and probability 0.2 the jitter is thus applied
    80 % of the time (the release's comparison, kept). kornia's ColorJitter
    with brightness = contrast = saturation = hue = ``strength`` works on the
    de-normalised ``[0, 1]`` images, drawing its factors per image.

    Args:
        images (Tensor): (B, 3, H, W) normalised RGB images.
        draw (float): the uniform draw deciding whether to jitter.
        strength (float): jitter strength for all four factors.
        probability (float): threshold on ``draw``.
        mean (Sequence[float]): normalisation mean (0-255, RGB).
        std (Sequence[float]): normalisation std (0-255, RGB).

    Returns:
        Tensor: (B, 3, H, W) normalised images.
    """
    if draw <= probability:
        return images
    jitter = ColorJitter(brightness=strength, contrast=strength, saturation=strength,
                         hue=strength)
    return renormalize(jitter(denormalize(images, mean, std)), mean, std)


def blur_kernel_size(size: int, ratio: float = 0.1) -> int:
    """Kernel side for an image side ``size``: ``ceil(ratio*size)``, forced odd (51 for 512)."""
    kernel = math.ceil(ratio * size)
    return kernel if kernel % 2 == 1 else kernel - 1


def gaussian_blur(images: Tensor,
                  draw: float,
                  sigmas: Tensor,
                  probability: float = 0.5,
                  kernel_ratio: float = 0.1) -> Tensor:
    """Gaussian blur applied, as released, when ``draw > probability`` (0.5).

    Args:
        images (Tensor): (B, 3, H, W) images (blurring commutes with the
            per-channel affine normalisation, so any normalisation works).
        draw (float): the uniform draw deciding whether to blur.
        sigmas (Tensor): (B,) per-image sigma, drawn from U(0.15, 1.15)
            by :func:`draw_blur_sigmas`.
        probability (float): threshold on ``draw``. Defaults to 0.5.
        kernel_ratio (float): kernel side as a fraction of the image side
            (made odd). Defaults to 0.1.

    Returns:
        Tensor: (B, 3, H, W) images.
    """
    if draw <= probability:
        return images
    kernel = (blur_kernel_size(images.shape[2], kernel_ratio),
              blur_kernel_size(images.shape[3], kernel_ratio))
    sigma = sigmas.to(images).view(-1, 1).expand(-1, 2).contiguous()
    return gaussian_blur2d(images, kernel, sigma)


def draw_blur_sigmas(batch_size: int,
                     generator: Optional[torch.Generator] = None,
                     low: float = 0.15,
                     high: float = 1.15) -> Tensor:
    """Per-image blur sigmas ~ U(low, high) (the release's 0.15 and 1.15)."""
    return low + (high - low) * torch.rand(batch_size, generator=generator)
