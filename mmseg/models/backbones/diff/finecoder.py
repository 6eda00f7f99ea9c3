"""Top-down fusion of the stride-8/16/32 maps into a stride-4 map (the release's finecoder)."""
from typing import Optional, Sequence, Tuple

from torch import Tensor, nn


class ResBlock(nn.Module):
    """ReLU(x + GN(conv3x3(ReLU(GN(conv3x3(x))))))."""

    def __init__(self, channels: int, norm_groups: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm1 = nn.GroupNorm(norm_groups, channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(norm_groups, channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.norm1(self.conv1(x)))
        return self.relu(x + self.norm2(self.conv2(out)))


class FusionStep(nn.Module):
    """Upsample x2 with ConvTranspose2d(k4, s2, p1), add the skip (if any), then a ResBlock."""

    def __init__(self, in_channels: int, out_channels: int, norm_groups: int):
        super().__init__()
        self.upsample = nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1)
        self.block = ResBlock(out_channels, norm_groups)

    def forward(self, x: Tensor, skip: Optional[Tensor] = None) -> Tensor:
        x = self.upsample(x)
        if skip is not None:
            x = x + skip
        return self.block(x)


class Finecoder(nn.Module):
    """Normalise the aggregated maps and build a stride-4 map from them, top-down.

    Args:
        in_channels: Widths of the stride-8, 16 and 32 inputs (fine to coarse).
        stride4_channels: Width of the stride-4 output.
        norm_groups: GroupNorm groups (inputs and ResBlocks).

    Returns (forward):
        ``(x4, x8, x16, x32)``, where x8..x32 are the GroupNorm-normalised inputs.
    """

    def __init__(self, in_channels: Sequence[int], stride4_channels: int, norm_groups: int):
        super().__init__()
        c8, c16, c32 = in_channels
        self.norms = nn.ModuleList(nn.GroupNorm(norm_groups, c) for c in in_channels)
        self.fuse16 = FusionStep(c32, c16, norm_groups)
        self.fuse8 = FusionStep(c16, c8, norm_groups)
        self.fuse4 = FusionStep(c8, stride4_channels, norm_groups)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(module.weight, mode='fan_out', nonlinearity='relu')
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.GroupNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x8: Tensor, x16: Tensor, x32: Tensor) -> Tuple[Tensor, ...]:
        x8, x16, x32 = (norm(x) for norm, x in zip(self.norms, (x8, x16, x32)))
        y16 = self.fuse16(x32, x16)
        y8 = self.fuse8(y16, x8)
        return self.fuse4(y8), x8, x16, x32
