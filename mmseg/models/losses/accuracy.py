"""Pixel accuracy (percent) over non-ignored pixels, logged as ``acc_seg``."""
import torch

from mmseg.models.backbones.diff import host_reads
from mmseg.utils import IGNORE_INDEX


def accuracy(pred: torch.Tensor, target: torch.Tensor,
             ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Top-1 accuracy in percent of (B, C, H, W) scores against (B, H, W) labels.

    Args:
        pred (Tensor): (B, C, H, W) class scores.
        target (Tensor): (B, H, W) labels.
        ignore_index (int): label value left out. Defaults to 255.

    Returns:
        Tensor: scalar in [0, 100]; 0 when no pixel is valid.
    """
    with torch.no_grad():
        if target.dim() == pred.dim():
            target = target[:, 0]
        valid = target != ignore_index
        num_valid = host_reads.item('valid_pixels', valid.sum())
        if num_valid == 0:
            return pred.new_zeros(())
        correct = (pred.argmax(dim=1) == target) & valid
        return correct.sum().to(pred.dtype) * (100.0 / num_valid)
