"""(Depthwise-separable) ASPP fusion used by DAFormer's ``sep-ASPP`` head (docs/method.md §3)."""
from typing import List, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule

from mmseg.utils import ConfigType, OptConfigType
from ..utils import resize


class ASPPFusion(nn.Module):
    """Parallel dilated branches, concatenated and fused by a 3x3 bottleneck.

    A dilation of 1 gives a 1x1 ConvModule; every other dilation a 3x3 branch,
    depthwise-separable when ``sep`` (depthwise 3x3 + norm + act, then pointwise
    1x1 + norm + act). Module names follow DAFormer's ``ASPPWrapper``
    (``aspp_modules``, ``bottleneck``, ``image_pool``).

    Args:
        in_channels (int): input channels.
        channels (int): channels of every branch and of the output.
        dilations (Sequence[int]): one branch per dilation.
        sep (bool): depthwise-separable 3x3 branches.
        pool (bool): add a global-average-pooling branch.
        norm_cfg (dict, optional): norm config of every ConvModule.
        act_cfg (dict): activation config of every ConvModule.
        conv_cfg (dict, optional): conv config. Defaults to None.
        align_corners (bool): for the pooled branch's upsampling. Defaults to False.
    """

    def __init__(self, in_channels: int, channels: int, dilations: Sequence[int], sep: bool,
                 pool: bool, norm_cfg: OptConfigType, act_cfg: ConfigType,
                 conv_cfg: OptConfigType = None, align_corners: bool = False) -> None:
        super().__init__()
        self.align_corners = align_corners
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.image_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), ConvModule(in_channels, channels, 1, **common)) \
            if pool else None
        branches: List[nn.Module] = []
        for dilation in dilations:
            if dilation == 1:
                branches.append(ConvModule(in_channels, channels, 1, **common))
            elif sep:
                branches.append(DepthwiseSeparableConvModule(
                    in_channels, channels, 3, dilation=dilation, padding=dilation, **common))
            else:
                branches.append(ConvModule(in_channels, channels, 3, dilation=dilation,
                                           padding=dilation, **common))
        self.aspp_modules = nn.ModuleList(branches)
        num_branches = len(branches) + int(pool)
        self.bottleneck = ConvModule(num_branches * channels, channels, 3, padding=1, **common)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, h, w) -> (B, channels, h, w)."""
        outs = []
        if self.image_pool is not None:
            outs.append(resize(self.image_pool(x), x.shape[2:], 'bilinear', self.align_corners))
        outs.extend(branch(x) for branch in self.aspp_modules)
        return self.bottleneck(torch.cat(outs, dim=1))
