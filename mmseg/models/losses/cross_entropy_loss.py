"""Softmax cross-entropy with an ignore index and the two reductions of the project.

The release (mmseg 0.16) averages the per-pixel loss over **all** pixels,
ignored ones included (they contribute 0): ``avg_non_ignore=False``, the
default of docs/method.md §2.1. ``avg_non_ignore=True`` divides by the number
of valid pixels instead (docs/differences.md §1).
"""
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmseg.registry import MODELS
from mmseg.utils import IGNORE_INDEX


def cross_entropy(logits: torch.Tensor,
                  label: torch.Tensor,
                  weight: Optional[torch.Tensor] = None,
                  class_weight: Optional[torch.Tensor] = None,
                  ignore_index: int = IGNORE_INDEX,
                  avg_non_ignore: bool = False) -> torch.Tensor:
    """Mean softmax cross-entropy of (B, C, H, W) logits against (B, H, W) labels.

    Args:
        logits (Tensor): (B, C, H, W) raw class scores.
        label (Tensor): (B, H, W) int64 class ids; ``ignore_index`` marks ignored pixels.
        weight (Tensor, optional): (B, H, W) per-pixel weights (e.g. DACS's
            pseudo-label confidence). Defaults to None.
        class_weight (Tensor, optional): (C,) per-class weights. Defaults to None.
        ignore_index (int): label value to ignore. Defaults to 255.
        avg_non_ignore (bool): divide by the number of non-ignored pixels
            instead of all pixels. Defaults to False.

    Returns:
        Tensor: scalar loss.
    """
    if label.dim() == logits.dim() and label.shape[1] == 1:
        label = label[:, 0]
    if label.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(f'cross_entropy: label shape {tuple(label.shape)} does not match '
                         f'logits shape {tuple(logits.shape)} (expected (B, H, W))')
    loss = F.cross_entropy(logits, label.long(), weight=class_weight, reduction='none',
                           ignore_index=ignore_index)
    if weight is not None:
        loss = loss * weight.to(loss.dtype)
    if avg_non_ignore:
        num_valid = (label != ignore_index).sum()
        # No valid pixel: the loss is 0 (and still part of the graph).
        return loss.sum() / num_valid.clamp(min=1).to(loss.dtype)
    return loss.mean()


@MODELS.register_module()
class CrossEntropyLoss(nn.Module):
    """Softmax cross-entropy loss module.

    Args:
        use_sigmoid (bool): only False is supported (kept for mmseg configs). Defaults to False.
        use_mask (bool): only False is supported. Defaults to False.
        class_weight (Sequence[float], optional): per-class weights. Defaults to None.
        loss_weight (float): multiplier of the loss. Defaults to 1.0.
        avg_non_ignore (bool): mean over valid pixels (True) or over all pixels
            as released (False). Defaults to False.
        loss_name (str): name of the loss. Defaults to 'loss_ce'.
    """

    def __init__(self,
                 use_sigmoid: bool = False,
                 use_mask: bool = False,
                 class_weight: Optional[Sequence[float]] = None,
                 loss_weight: float = 1.0,
                 avg_non_ignore: bool = False,
                 loss_name: str = 'loss_ce') -> None:
        super().__init__()
        if use_sigmoid or use_mask:
            raise ValueError('CrossEntropyLoss: only softmax cross-entropy is implemented '
                             '(use_sigmoid=False, use_mask=False)')
        self.loss_weight = loss_weight
        self.avg_non_ignore = avg_non_ignore
        self.class_weight = list(class_weight) if class_weight is not None else None
        self._loss_name = loss_name

    def forward(self,
                cls_score: torch.Tensor,
                label: torch.Tensor,
                weight: Optional[torch.Tensor] = None,
                ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
        """Loss of (B, C, H, W) scores against (B, H, W) labels; see :func:`cross_entropy`."""
        class_weight = None
        if self.class_weight is not None:
            class_weight = cls_score.new_tensor(self.class_weight)
        return self.loss_weight * cross_entropy(cls_score, label, weight, class_weight,
                                                ignore_index, self.avg_non_ignore)

    @property
    def loss_name(self) -> str:
        return self._loss_name

    def extra_repr(self) -> str:
        return f'loss_weight={self.loss_weight}, avg_non_ignore={self.avg_non_ignore}'
