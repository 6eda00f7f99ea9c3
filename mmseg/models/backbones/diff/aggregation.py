"""Trainable aggregation of the concatenated diffusion features, one branch per stride.

Design follows detectron2's ``BottleneckBlock`` (1x1 -> 3x3 -> 1x1 with GroupNorm, a projected
shortcut, ``c2_msra_fill`` initialisation), as the DIFF release uses it.
"""
from typing import Dict, Sequence

import torch
from torch import Tensor, nn

from .layout import Level


def msra_fill(conv: nn.Module) -> None:
    """Kaiming-normal (fan_out, ReLU) weights and zero bias (detectron2's c2_msra_fill)."""
    nn.init.kaiming_normal_(conv.weight, mode='fan_out', nonlinearity='relu')
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


class ConvNorm(nn.Sequential):
    """A bias-free convolution followed by GroupNorm."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, groups: int):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                      bias=False),
            nn.GroupNorm(groups, out_channels))


class BottleneckBlock(nn.Module):
    """ReLU(GN(conv1x1) -> ReLU -> GN(conv3x3) -> ReLU -> GN(conv1x1) + GN(conv1x1 shortcut)).

    Args:
        in_channels: Input width.
        bottleneck_channels: Width of the 3x3 convolution.
        out_channels: Output width.
        norm_groups: GroupNorm groups of every normalisation.
    """

    def __init__(self, in_channels: int, bottleneck_channels: int, out_channels: int,
                 norm_groups: int):
        super().__init__()
        self.shortcut = (ConvNorm(in_channels, out_channels, 1, norm_groups)
                         if in_channels != out_channels else nn.Identity())
        self.conv1 = ConvNorm(in_channels, bottleneck_channels, 1, norm_groups)
        self.conv2 = ConvNorm(bottleneck_channels, bottleneck_channels, 3, norm_groups)
        self.conv3 = ConvNorm(bottleneck_channels, out_channels, 1, norm_groups)
        self.relu = nn.ReLU(inplace=True)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                msra_fill(module)
            elif isinstance(module, nn.GroupNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.conv1(x))
        out = self.relu(self.conv2(out))
        out = self.conv3(out)
        return self.relu(out + self.shortcut(x))


class DirectAggregation(nn.Module):
    """One bottleneck per stride over the whole concatenated level (the release's default).

    Args:
        in_channels: ``{stride: concatenated feature channels}``.
        out_channels: ``{stride: output channels}``.
        bottleneck_ratio: Bottleneck width = output channels / ratio.
        norm_groups: GroupNorm groups.
    """

    def __init__(self, in_channels: Dict[int, int], out_channels: Dict[int, int],
                 bottleneck_ratio: int, norm_groups: int):
        super().__init__()
        self.blocks = nn.ModuleDict({
            f'stride{s}': BottleneckBlock(in_channels[s], out_channels[s] // bottleneck_ratio,
                                          out_channels[s], norm_groups)
            for s in sorted(in_channels)})

    def forward(self, features: Dict[int, Tensor]) -> Dict[int, Tensor]:
        return {s: self.blocks[f'stride{s}'](x) for s, x in features.items()}


class MixingAggregation(nn.Module):
    """Per-layer bottlenecks shared across timesteps, mixed with softmax weights.

    For each stride, layer l's features at saved step t go through the bottleneck of layer l;
    the results are summed with weights softmax(w)[l, t] over all (layer, step) pairs (weights
    start equal). This is what the release's ``aggregation`` mode meant; its channel slicing
    was broken (the project's docs/method.md §1.10), here each layer reads its own channels.

    Args:
        levels: The recorded levels (their layers give the channel layout).
        out_channels: ``{stride: output channels}``.
        bottleneck_ratio: Bottleneck width = output channels / ratio.
        norm_groups: GroupNorm groups.
    """

    def __init__(self, levels: Sequence[Level], out_channels: Dict[int, int],
                 bottleneck_ratio: int, norm_groups: int):
        super().__init__()
        self.levels = {level.stride: level for level in levels}
        self.blocks = nn.ModuleDict()
        self.mixing_weights = nn.ParameterDict()
        for level in sorted(levels, key=lambda lv: lv.stride):
            width = out_channels[level.stride]
            self.blocks[f'stride{level.stride}'] = nn.ModuleList(
                BottleneckBlock(layer.channels, width // bottleneck_ratio, width, norm_groups)
                for layer in level.layers)
            self.mixing_weights[f'stride{level.stride}'] = nn.Parameter(
                torch.ones(len(level.layers) * level.num_steps))

    def forward(self, features: Dict[int, Tensor]) -> Dict[int, Tensor]:
        return {s: self._mix(s, x) for s, x in features.items()}

    def _mix(self, stride: int, x: Tensor) -> Tensor:
        level, blocks = self.levels[stride], self.blocks[f'stride{stride}']
        weights = torch.softmax(self.mixing_weights[f'stride{stride}'], dim=0)
        batch, steps, (height, width) = x.shape[0], level.num_steps, x.shape[-2:]
        out = 0
        for index, (layer, block) in enumerate(zip(level.layers, blocks)):
            start = level.offset(index, 0)
            chunk = x[:, start:start + steps * layer.channels]
            # All steps of one layer through its bottleneck at once (GN is per sample).
            mapped = block(chunk.reshape(batch * steps, layer.channels, height, width))
            mapped = mapped.view(batch, steps, *mapped.shape[1:])
            layer_weights = weights[index * steps:(index + 1) * steps].view(1, steps, 1, 1, 1)
            out = out + (mapped * layer_weights).sum(1)
        return out
