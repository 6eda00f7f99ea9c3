"""Base class of decode heads: input selection, classifier, loss and prediction.

Design follows mmsegmentation 1.x's ``BaseDecodeHead`` (loss/predict vocabulary
on data samples), with the release's loss reduction (docs/method.md §2.1) and an
optional per-pixel weight for DACS's pseudo-labelled images.
"""
from abc import ABCMeta, abstractmethod
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from mmseg.registry import MODELS
from mmseg.utils import IGNORE_INDEX, ConfigType, OptConfigType, SampleList
from ..losses import accuracy
from ..utils import resize

_INPUT_TRANSFORMS = (None, 'multiple_select', 'resize_concat')


class BaseDecodeHead(BaseModule, metaclass=ABCMeta):
    """Base decode head.

    Args:
        in_channels (int | Sequence[int]): channels of the selected input(s).
        channels (int): channels after the fusion, before ``conv_seg``.
        num_classes (int): number of classes.
        dropout_ratio (float): Dropout2d ratio before ``conv_seg``. Defaults to 0.1.
        conv_cfg (dict, optional): conv layer config. Defaults to None.
        norm_cfg (dict, optional): norm layer config. Defaults to None.
        act_cfg (dict): activation config. Defaults to ReLU.
        in_index (int | Sequence[int]): which backbone outputs to use. Defaults to -1.
        input_transform (str, optional): None (one input), 'multiple_select'
            (a list) or 'resize_concat'. Defaults to None.
        loss_decode (dict | Sequence[dict]): loss config(s); their sum is
            logged as ``loss_seg``. Defaults to CrossEntropyLoss.
        ignore_index (int): ignored label value. Defaults to 255.
        align_corners (bool): for every bilinear resize. Defaults to False.
        init_cfg (dict, optional): defaults to Normal(std=0.01) on ``conv_seg``.
    """

    def __init__(self,
                 in_channels: Union[int, Sequence[int]],
                 channels: int,
                 *,
                 num_classes: int,
                 dropout_ratio: float = 0.1,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: OptConfigType = None,
                 act_cfg: ConfigType = dict(type='ReLU'),
                 in_index: Union[int, Sequence[int]] = -1,
                 input_transform: Optional[str] = None,
                 loss_decode: Union[ConfigType, Sequence[ConfigType]] = dict(
                     type='CrossEntropyLoss', loss_weight=1.0),
                 ignore_index: int = IGNORE_INDEX,
                 align_corners: bool = False,
                 init_cfg: OptConfigType = dict(
                     type='Normal', std=0.01, override=dict(name='conv_seg'))) -> None:
        super().__init__(init_cfg)
        self._init_inputs(in_channels, in_index, input_transform)
        self.channels = channels
        self.num_classes = num_classes
        self.dropout_ratio = dropout_ratio
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        self.ignore_index = ignore_index
        self.align_corners = align_corners
        loss_cfgs = [loss_decode] if isinstance(loss_decode, dict) else list(loss_decode)
        self.loss_decode = nn.ModuleList(MODELS.build(cfg) for cfg in loss_cfgs)
        self.conv_seg = nn.Conv2d(channels, num_classes, kernel_size=1)
        # Same as the init_cfg, so the head is right even before init_weights().
        nn.init.normal_(self.conv_seg.weight, 0, 0.01)
        nn.init.zeros_(self.conv_seg.bias)
        self.dropout = nn.Dropout2d(dropout_ratio) if dropout_ratio > 0 else None

    def _init_inputs(self, in_channels, in_index, input_transform) -> None:
        if input_transform not in _INPUT_TRANSFORMS:
            raise ValueError(f'{type(self).__name__}: input_transform must be one of '
                             f'{_INPUT_TRANSFORMS}, got {input_transform!r}')
        self.input_transform = input_transform
        self.in_index = in_index
        if input_transform is None:
            if not isinstance(in_channels, int) or not isinstance(in_index, int):
                raise ValueError(f'{type(self).__name__}: without input_transform, in_channels '
                                 f'and in_index must be ints, got {in_channels}, {in_index}')
            self.in_channels = in_channels
            return
        if isinstance(in_channels, int) or isinstance(in_index, int) or \
                len(in_channels) != len(in_index):
            raise ValueError(f'{type(self).__name__}: in_channels {in_channels} and in_index '
                             f'{in_index} must be lists of the same length')
        self.in_index = list(in_index)
        self.in_channels = sum(in_channels) if input_transform == 'resize_concat' \
            else list(in_channels)

    def _transform_inputs(self, inputs: Sequence[torch.Tensor]
                          ) -> Union[torch.Tensor, List[torch.Tensor]]:
        """Select (and for 'resize_concat' fuse) the backbone outputs this head uses."""
        if self.input_transform is None:
            return inputs[self.in_index]
        selected = [inputs[i] for i in self.in_index]
        if self.input_transform == 'multiple_select':
            return selected
        size = selected[0].shape[2:]
        return torch.cat([resize(x, size, 'bilinear', self.align_corners) for x in selected], 1)

    @abstractmethod
    def forward(self, inputs: Tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Backbone features to (B, num_classes, h, w) logits."""

    def cls_seg(self, feat: torch.Tensor) -> torch.Tensor:
        """Dropout, then the 1x1 classifier."""
        if self.dropout is not None:
            feat = self.dropout(feat)
        return self.conv_seg(feat)

    def loss(self, inputs: Tuple[torch.Tensor, ...], batch_data_samples: SampleList,
             seg_weight: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Forward and compute ``loss_seg`` and ``acc_seg``."""
        return self.loss_by_feat(self.forward(inputs), batch_data_samples, seg_weight)

    def predict(self, inputs: Tuple[torch.Tensor, ...], batch_img_metas: List[dict],
                test_cfg: OptConfigType = None) -> torch.Tensor:
        """Forward and resize the logits to the batch's (padded) input size."""
        return self.predict_by_feat(self.forward(inputs), batch_img_metas)

    def loss_by_feat(self, seg_logits: torch.Tensor, batch_data_samples: SampleList,
                     seg_weight: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Loss of stride-s logits against the full-size labels.

        Args:
            seg_logits (Tensor): (B, C, h, w) logits; bilinearly resized to the label size.
            batch_data_samples (list[SegDataSample]): with ``gt_sem_seg`` (1, H, W).
            seg_weight (Tensor, optional): (B, H, W) or (B, 1, H, W) per-pixel weights.

        Returns:
            dict: ``loss_seg`` (the summed losses) and ``acc_seg`` (percent).
        """
        seg_label = stack_batch_gt(batch_data_samples)
        seg_logits = resize(seg_logits, seg_label.shape[2:], 'bilinear', self.align_corners)
        seg_label = seg_label.squeeze(1)
        if seg_weight is not None and seg_weight.dim() == 4:
            seg_weight = seg_weight.squeeze(1)
        loss = sum(loss_fn(seg_logits, seg_label, weight=seg_weight,
                           ignore_index=self.ignore_index) for loss_fn in self.loss_decode)
        return dict(loss_seg=loss,
                    acc_seg=accuracy(seg_logits, seg_label, ignore_index=self.ignore_index))

    def predict_by_feat(self, seg_logits: torch.Tensor, batch_img_metas: List[dict]
                        ) -> torch.Tensor:
        """Resize logits to ``pad_shape`` (else ``img_shape``) of the first image."""
        meta = batch_img_metas[0]
        size = meta.get('pad_shape', meta.get('img_shape'))
        return resize(seg_logits, size[:2], 'bilinear', self.align_corners)


def stack_batch_gt(batch_data_samples: SampleList) -> torch.Tensor:
    """The samples' ``gt_sem_seg`` labels as one (B, 1, H, W) tensor."""
    if not batch_data_samples or any('gt_sem_seg' not in s for s in batch_data_samples):
        raise ValueError('decode head loss: every data sample needs gt_sem_seg')
    return torch.stack([s.gt_sem_seg.data for s in batch_data_samples], dim=0)
