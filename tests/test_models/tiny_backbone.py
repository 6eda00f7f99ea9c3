"""A test-only backbone that follows the project's backbone protocol.

``forward(inputs, label_map=None, generator=None)`` returns four maps at strides
4/8/16/32. A label map, when given, adds a learned per-class embedding (so the
two IPKL passes differ), and ``noise_std > 0`` adds noise drawn from each
image's own generator (so per-image seeding can be tested). Importing this
module registers it in ``mmseg.registry.MODELS`` as ``TestTinyBackbone``.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmseg.registry import MODELS


@MODELS.register_module('TestTinyBackbone', force=True)
class TinyBackbone(nn.Module):
    """Strided convolutions: stride 4, then three stride-2 stages.

    Args:
        channels (Sequence[int]): output channels per level. Defaults to (8, 16, 32, 64).
        num_classes (int): classes of the label embedding. Defaults to 19.
        noise_std (float): std of the per-image generator noise added to the input.
            Defaults to 0.
    """

    def __init__(self, channels: Sequence[int] = (8, 16, 32, 64), num_classes: int = 19,
                 noise_std: float = 0.0) -> None:
        super().__init__()
        self.out_channels: Tuple[int, ...] = tuple(channels)
        self.out_strides: Tuple[int, ...] = (4, 8, 16, 32)
        self.num_classes = num_classes
        self.noise_std = noise_std
        self.stem = nn.Conv2d(3, channels[0], 4, stride=4)
        self.stages = nn.ModuleList(
            nn.Conv2d(c_in, c_out, 3, stride=2, padding=1)
            for c_in, c_out in zip(channels[:-1], channels[1:]))
        self.label_embed = nn.Embedding(num_classes + 1, channels[0])

    def forward(self, inputs: torch.Tensor, label_map: Optional[torch.Tensor] = None,
                generator: Optional[List[torch.Generator]] = None) -> Tuple[torch.Tensor, ...]:
        if generator is not None and self.noise_std > 0:
            noise = torch.stack([torch.randn(inputs.shape[1:], generator=g)
                                 for g in generator]).to(inputs)
            inputs = inputs + self.noise_std * noise
        x = self.stem(inputs)
        if label_map is not None:
            # Ignored pixels (255) get the extra embedding row.
            labels = label_map[:, 0].clone()
            labels[labels >= self.num_classes] = self.num_classes
            embed = self.label_embed(labels).permute(0, 3, 1, 2)
            x = x + F.avg_pool2d(embed, 4)
        outs = [F.relu(x)]
        for stage in self.stages:
            outs.append(F.relu(stage(outs[-1])))
        return tuple(outs)
