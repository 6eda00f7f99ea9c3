"""Colouring label maps, overlays and prediction figures with a legend (numpy, RGB uint8)."""
from typing import Optional, Sequence

import cv2
import numpy as np

from .class_names import CLASSES, IGNORE_INDEX, PALETTE


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


# ---------------------------------------------------------------- prediction figures

#: Minimum width of one panel of a prediction figure, in pixels.
PANEL_WIDTH = 512
ERROR_WRONG = (255, 0, 0)
ERROR_CORRECT = (0, 0, 0)
IGNORE_GREY = (128, 128, 128)
_FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX
_TEXT_SCALE = 0.6
_BAR = 30  # height of a panel's title bar
_BACKGROUND = (32, 32, 32)
_TEXT = (255, 255, 255)


def error_map(pred: np.ndarray, label: np.ndarray,
              ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """(H, W, 3) RGB: wrong pixels red, correct ones black, ``ignore_index`` pixels grey."""
    errors = np.zeros(label.shape + (3, ), np.uint8)
    errors[pred != label] = ERROR_WRONG
    errors[pred == label] = ERROR_CORRECT
    errors[label == ignore_index] = IGNORE_GREY
    return errors


def _put_text(canvas: np.ndarray, text: str, origin, scale: float = _TEXT_SCALE) -> None:
    cv2.putText(canvas, text, origin, _FONT, scale, _TEXT, 1, cv2.LINE_AA)


def _titled(panel: np.ndarray, title: str) -> np.ndarray:
    bar = np.empty((_BAR, panel.shape[1], 3), np.uint8)
    bar[:] = _BACKGROUND
    _put_text(bar, title, (8, _BAR - 9))
    return np.concatenate([bar, panel], axis=0)


def legend(width: int, class_names: Sequence[str], palette: Sequence[Sequence[int]],
           present: Optional[Sequence[int]] = None) -> np.ndarray:
    """Colour swatches with class names in rows across ``width`` pixels (RGB uint8).

    Classes in ``present`` (e.g. those in the ground truth or prediction) are written in
    white, the others in grey.
    """
    cell_width, row_height, swatch = 200, 26, 18
    columns = max(1, width // cell_width)
    rows = -(-len(class_names) // columns)
    canvas = np.empty((rows * row_height + 8, width, 3), np.uint8)
    canvas[:] = _BACKGROUND
    shown = set(range(len(class_names))) if present is None else set(present)
    for index, (name, colour) in enumerate(zip(class_names, palette)):
        x = 8 + (index % columns) * cell_width
        y = 4 + (index // columns) * row_height
        canvas[y + 3:y + 3 + swatch, x:x + swatch] = colour
        cv2.putText(canvas, name, (x + swatch + 8, y + 17), _FONT, 0.5,
                    _TEXT if index in shown else (140, 140, 140), 1, cv2.LINE_AA)
    return canvas


def _fit(array: np.ndarray, size, label: bool) -> np.ndarray:
    if array.shape[:2] == (size[1], size[0]):
        return array
    interpolation = cv2.INTER_NEAREST if label else cv2.INTER_AREA if (
        array.shape[1] > size[0]) else cv2.INTER_LINEAR
    return cv2.resize(array, size, interpolation=interpolation)


def prediction_figure(image: Optional[np.ndarray], pred: np.ndarray,
                      label: Optional[np.ndarray] = None,
                      class_names: Sequence[str] = CLASSES,
                      palette: Sequence[Sequence[int]] = PALETTE,
                      ignore_index: int = IGNORE_INDEX,
                      panel_width: int = PANEL_WIDTH) -> np.ndarray:
    """One picture of a prediction: image | ground truth / prediction | error map, and a legend.

    Panels are at least ``panel_width`` pixels wide (the prediction's width if larger), in two
    columns, each with a title; without ``label`` only image | prediction. The legend lists
    every class with its colour (classes that occur in the picture in white).

    Args:
        image: (H', W', 3) RGB uint8 image (resized to the prediction), or None.
        pred: (H, W) predicted train ids.
        label: (H, W) ground-truth train ids (``ignore_index`` shown grey), or None.

    Returns:
        (H_fig, W_fig, 3) RGB uint8.
    """
    height, width = pred.shape
    scale = max(panel_width, width) / width
    size = (int(round(width * scale)), max(1, int(round(height * scale))))
    panels = []
    if image is not None:
        panels.append(('image', _fit(_fit(image, (width, height), False), size, False)))
    if label is not None:
        if label.shape != pred.shape:
            label = _fit(label.astype(np.uint8), (width, height), True)
        panels.append(('ground truth (black: ignored)',
                       _fit(colorize(label, palette), size, True)))
    panels.append(('prediction', _fit(colorize(pred, palette), size, True)))
    present = set(np.unique(pred).tolist())
    if label is not None:
        labelled = label != ignore_index
        wrong = 100.0 * float((pred != label)[labelled].mean()) if labelled.any() else 0.0
        panels.append((f'errors: {wrong:.1f}% of labelled pixels wrong (red; grey: ignored)',
                       _fit(error_map(pred, label, ignore_index), size, True)))
        present |= set(np.unique(label[labelled]).tolist())
    titled = [_titled(panel, title) for title, panel in panels]
    if len(titled) % 2:
        titled.append(np.full_like(titled[0], _BACKGROUND[0]))
    rows = [np.concatenate(titled[i:i + 2], axis=1) for i in range(0, len(titled), 2)]
    figure = np.concatenate(rows, axis=0)
    return np.concatenate([figure, legend(figure.shape[1], class_names, palette,
                                          sorted(present))], axis=0)
