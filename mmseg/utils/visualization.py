"""Colouring label maps and overlaying them on images (numpy, RGB uint8)."""
from typing import Optional, Sequence

import numpy as np

from .class_names import IGNORE_INDEX, PALETTE


def colorize(label: np.ndarray,
             palette: Sequence[Sequence[int]] = PALETTE,
             ignore_color: Sequence[int] = (0, 0, 0)) -> np.ndarray:
    """Map an (H, W) array of train ids to an (H, W, 3) RGB uint8 image.

    Ids outside the palette (255 = ignore included) get ``ignore_color``.
    """
    label = np.asarray(label)
    lut = np.tile(np.asarray(ignore_color, dtype=np.uint8), (256, 1))
    lut[:len(palette)] = np.asarray(palette, dtype=np.uint8)
    return lut[np.clip(label, 0, 255).astype(np.uint8)]


def overlay(image: np.ndarray,
            label: np.ndarray,
            opacity: float = 0.5,
            palette: Sequence[Sequence[int]] = PALETTE,
            ignore_index: Optional[int] = IGNORE_INDEX) -> np.ndarray:
    """Blend the coloured ``label`` over an RGB uint8 ``image`` of the same size.

    Pixels equal to ``ignore_index`` keep the image's colour.
    """
    if image.shape[:2] != label.shape[:2]:
        raise ValueError(f'image {image.shape[:2]} and label {label.shape[:2]} '
                         'must have the same height and width')
    color = colorize(label, palette).astype(np.float32)
    blended = (1 - opacity) * image.astype(np.float32) + opacity * color
    if ignore_index is not None:
        keep = label == ignore_index
        blended[keep] = image[keep]
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)
