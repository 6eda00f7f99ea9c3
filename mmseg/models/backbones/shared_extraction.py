"""The backbone interface for shared extraction: a frozen stage, then a trained one.

A :class:`SharedExtractionBackbone` splits its forward in two. :meth:`extract` runs the frozen
part for several trajectories at once (DIFF: one UNet call per inversion step for all of
them) and :meth:`decode` runs the trained part on one trajectory's extracted features, so
``[decode(f) for f in extract(ts)]`` equals ``[backbone(t.images, t.label_map, t.generator)
for t in ts]``. The segmentor and DACS use every backbone through this interface:
:func:`two_stages` gives any other backbone (MiT) the one-pass form, whose extraction keeps
the trajectories and whose decoding is the whole forward.
"""
from abc import ABCMeta, abstractmethod
from typing import Any, List, Sequence, Tuple

from torch import Tensor, nn

from .diff.trajectory import Trajectory

__all__ = ['OnePass', 'SharedExtractionBackbone', 'Trajectory', 'two_stages']


class SharedExtractionBackbone(metaclass=ABCMeta):
    """A backbone whose frozen part is extracted for several trajectories at once."""

    @abstractmethod
    def extract(self, trajectories: Sequence[Trajectory]) -> List[Any]:
        """The frozen part of every trajectory, in order (no gradient flows through it)."""

    @abstractmethod
    def decode(self, features: Any) -> Tuple[Tensor, ...]:
        """The trained part on one trajectory's extracted features: the feature maps of
        ``forward``, fine to coarse."""


class OnePass(SharedExtractionBackbone):
    """A plain backbone seen as two stages: nothing is extracted ahead, decoding runs it."""

    def __init__(self, backbone: nn.Module):
        self.backbone = backbone

    def extract(self, trajectories: Sequence[Trajectory]) -> List[Trajectory]:
        return list(trajectories)

    def decode(self, features: Trajectory) -> Tuple[Tensor, ...]:
        return tuple(self.backbone(features.images, label_map=features.label_map,
                                   generator=features.generator))


def two_stages(backbone: nn.Module) -> SharedExtractionBackbone:
    """``backbone`` itself when it implements the interface, else its :class:`OnePass`."""
    if isinstance(backbone, SharedExtractionBackbone):
        return backbone
    return OnePass(backbone)
