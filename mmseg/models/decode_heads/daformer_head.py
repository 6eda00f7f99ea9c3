"""DAFormer decode head with the separable-ASPP fusion (``daformer_sepaspp``).

Design follows DAFormer (Hoyer et al., CVPR 2022), as configured by the DIFF
release (docs/method.md §3): per-level token MLP to ``embed_dims``, bilinear
resize to the finest level (stride 4), concatenation, sep-ASPP with dilations
(1, 6, 12, 18) and no pooling branch, 3x3 bottleneck, Dropout2d, 1x1 classifier.
"""
from typing import Dict, Sequence, Tuple

import torch
import torch.nn as nn

from mmseg.registry import MODELS
from .aspp import ASPPFusion
from .decode_head import BaseDecodeHead
from ..utils import resize

_DECODER_KEYS = {'embed_dims', 'embed_cfg', 'embed_neck_cfg', 'fusion_cfg'}
_FUSION_KEYS = {'type', 'sep', 'dilations', 'pool', 'act_cfg', 'norm_cfg'}


class MLPEmbed(nn.Module):
    """Per-pixel ``Linear(in_channels -> embed_dims)`` applied to flattened tokens."""

    def __init__(self, in_channels: int, embed_dims: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_channels, embed_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B, embed_dims, h, w)."""
        batch, _, height, width = x.shape
        tokens = self.proj(x.flatten(2).transpose(1, 2))
        return tokens.transpose(1, 2).reshape(batch, -1, height, width)


def _check_embed_cfg(cfg: dict, key: str) -> None:
    # The release uses plain MLPs without norm or activation; nothing else is built.
    if cfg.get('type', 'mlp') != 'mlp' or cfg.get('act_cfg') or cfg.get('norm_cfg') or \
            set(cfg) - {'type', 'act_cfg', 'norm_cfg'}:
        raise ValueError(f'DAFormerHead: decoder_params.{key} must be '
                         f"dict(type='mlp', act_cfg=None, norm_cfg=None), got {cfg}")


@MODELS.register_module()
class DAFormerHead(BaseDecodeHead):
    """DAFormer head with sep-ASPP fusion; output logits at the stride of input 0.

    Args:
        decoder_params (dict): ``embed_dims`` (int), optional ``embed_cfg`` /
            ``embed_neck_cfg`` (only ``dict(type='mlp', act_cfg=None,
            norm_cfg=None)``) and ``fusion_cfg`` with keys ``type`` ('aspp'),
            ``dilations`` (required), ``sep`` (default True), ``pool`` (default
            False), ``act_cfg``, ``norm_cfg`` (the last two default to the head's).
        **kwargs: see :class:`BaseDecodeHead`; ``input_transform`` is forced to
            'multiple_select'.
    """

    def __init__(self, decoder_params: Dict, **kwargs) -> None:
        if kwargs.pop('input_transform', 'multiple_select') != 'multiple_select':
            raise ValueError("DAFormerHead: input_transform must be 'multiple_select'")
        super().__init__(input_transform='multiple_select', **kwargs)
        if self.align_corners:
            raise ValueError('DAFormerHead: align_corners must be False (as released)')
        unknown = set(decoder_params) - _DECODER_KEYS
        if unknown:
            raise ValueError(f'DAFormerHead: unknown decoder_params key(s) {sorted(unknown)}; '
                             f'expected a subset of {sorted(_DECODER_KEYS)}')
        for key in ('embed_cfg', 'embed_neck_cfg'):
            _check_embed_cfg(dict(decoder_params.get(key) or {}), key)
        embed_dims = decoder_params['embed_dims']
        self.embed_layers = nn.ModuleDict({
            str(index): MLPEmbed(in_ch, embed_dims)
            for index, in_ch in zip(self.in_index, self.in_channels)})
        self.fuse_layer = self._build_fusion(dict(decoder_params.get('fusion_cfg') or {}),
                                             embed_dims * len(self.in_index))

    def _build_fusion(self, cfg: dict, in_channels: int) -> ASPPFusion:
        unknown = set(cfg) - _FUSION_KEYS
        if unknown or cfg.get('type', 'aspp') != 'aspp' or 'dilations' not in cfg:
            raise ValueError(f"DAFormerHead: fusion_cfg must be an 'aspp' fusion with "
                             f"'dilations' and keys in {sorted(_FUSION_KEYS)}, got {cfg}")
        return ASPPFusion(in_channels, self.channels,
                          dilations=tuple(cfg['dilations']),
                          sep=cfg.get('sep', True), pool=cfg.get('pool', False),
                          norm_cfg=cfg.get('norm_cfg', self.norm_cfg),
                          act_cfg=cfg.get('act_cfg', self.act_cfg),
                          conv_cfg=self.conv_cfg, align_corners=self.align_corners)

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Backbone outputs (fine to coarse) -> (B, num_classes, H/4, W/4) logits."""
        feats: Tuple[torch.Tensor, ...] = tuple(self._transform_inputs(inputs))
        out_size = feats[0].shape[2:]
        embedded = [resize(self.embed_layers[str(index)](x), out_size, 'bilinear',
                           self.align_corners)
                    for index, x in zip(self.in_index, feats)]
        return self.cls_seg(self.fuse_layer(torch.cat(embedded, dim=1)))
