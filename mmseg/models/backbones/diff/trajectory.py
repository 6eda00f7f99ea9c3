"""What one extraction inverts (:class:`Trajectory`), the checks of it, and the UNet usage."""
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor


@dataclass(frozen=True)
class UNetUsage:
    """UNet work of the latest extraction: the number of calls and the batch rows of each."""

    calls: int
    rows: Tuple[int, ...]


@dataclass(frozen=True, eq=False)
class Trajectory:
    """One inversion of a batch of images, with or without path control.

    Several trajectories at the same image size share their UNet calls in
    :meth:`DiffusionFeatureExtractor.extract`; each still gets exactly the features of its own
    separate extraction.

    Attributes:
        images: (B, 3, H, W) RGB in [-1, 1]; H and W multiples of ``size_multiple``.
        label_map: Optional (B, 1, H, W) integer train ids (255 = ignore): path control for
            the prompted classes present anywhere in THIS trajectory's batch.
        generator: None (global RNG) or one ``torch.Generator`` per image. Give each
            trajectory generators of its own: one shared by two trajectories would be drawn
            from in a different order than by separate extractions.
    """

    images: Tensor
    label_map: Optional[Tensor] = None
    generator: Optional[Sequence[torch.Generator]] = None


def check_trajectories(trajectories: Sequence[Trajectory], size_multiple: int) -> None:
    """Raise ValueError (one line naming what was expected) for anything the extractor
    cannot invert: no trajectory, another type, bad shapes, sizes or generators."""
    if not trajectories:
        raise ValueError('DIFF extract: expected at least one Trajectory, got none')
    for trajectory in trajectories:
        if not isinstance(trajectory, Trajectory):
            raise ValueError(f'DIFF extract: expected Trajectory objects, got '
                             f'{type(trajectory).__name__}')
        _check(trajectory.images, trajectory.label_map, trajectory.generator, size_multiple)


def _check(images: Tensor, label_map: Optional[Tensor],
           generator: Optional[Sequence[torch.Generator]], multiple: int) -> None:
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f'DIFF expects images of shape (B, 3, H, W) in [-1, 1], got '
                         f'{tuple(images.shape)}')
    height, width = images.shape[2], images.shape[3]
    if height % multiple or width % multiple:
        raise ValueError(f'DIFF needs image height and width that are multiples of '
                         f'{multiple}, got {height}x{width}; pad the images first (e.g. '
                         f'size_divisor={multiple} in the data preprocessor)')
    expected = (images.shape[0], 1, height, width)
    if label_map is not None and (tuple(label_map.shape) != expected
                                  or label_map.is_floating_point()):
        raise ValueError(f'DIFF expects label_map as an integer tensor of shape {expected} '
                         f'(B, 1, H, W like the images), got {tuple(label_map.shape)} '
                         f'{label_map.dtype}')
    if generator is not None and (not isinstance(generator, (list, tuple))
                                  or len(generator) != images.shape[0]):
        raise ValueError('DIFF expects generator=None or a list of one torch.Generator per '
                         f'image ({images.shape[0]}), got {generator!r}')
