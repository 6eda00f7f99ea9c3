"""Looking at diffusion features: PCA colours, per-class means, cosine similarity, figures.

The maths is plain torch; the figures are RGB uint8 arrays drawn with OpenCV in the style of
:mod:`mmseg.utils.visualization`. Used by ``tools/show_features.py``.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .class_names import IGNORE_INDEX

_FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX
_BACKGROUND = (32, 32, 32)
_TEXT = (255, 255, 255)
#: Percentiles of the projected values mapped to 0 and 255 (shared by every panel of a level).
LOW_HIGH_PERCENTILES = (1.0, 99.0)


# ---------------------------------------------------------------- maths (plain torch)

def split_steps(features: Tensor, level) -> List[Tensor]:
    """The feature map of one level, one (B, C_step, h, w) tensor per saved step.

    ``level`` is a ``diff`` package level (``layers``, ``num_steps``, ``offset``): its channels
    hold, layer by layer, each layer's channels at every saved step.
    """
    per_step = []
    for position in range(level.num_steps):
        parts = [features[:, level.offset(index, position):
                          level.offset(index, position) + layer.channels]
                 for index, layer in enumerate(level.layers)]
        per_step.append(torch.cat(parts, dim=1))
    return per_step


def pca_basis(maps: Sequence[Tensor], num_components: int = 3) -> Tuple[Tensor, Tensor]:
    """Mean (C,) and the first principal directions (C, k) of the pixels of all ``maps``.

    Every pixel of every (B, C, h, w) map is one sample; the directions are the top
    eigenvectors of their covariance, each signed so that its largest entry is positive.
    """
    samples = torch.cat([m.double().permute(0, 2, 3, 1).reshape(-1, m.shape[1]) for m in maps])
    mean = samples.mean(0)
    centred = samples - mean
    covariance = centred.T @ centred / max(1, samples.shape[0] - 1)
    _, vectors = torch.linalg.eigh(covariance)  # ascending eigenvalues
    components = vectors.flip(1)[:, :num_components]
    if components.shape[1] < num_components:  # fewer channels than components: pad with zeros
        components = F.pad(components, (0, num_components - components.shape[1]))
    peak = components.abs().argmax(0)
    signs = torch.sign(components[peak, torch.arange(num_components)])
    return mean, components * torch.where(signs == 0, 1.0, signs).double()


def project(maps: Sequence[Tensor], mean: Tensor, components: Tensor) -> List[Tensor]:
    """Each (B, C, h, w) map projected on the directions: (B, k, h, w), float64."""
    return [torch.einsum('bchw,ck->bkhw', m.double() - mean.view(1, -1, 1, 1), components)
            for m in maps]


def to_rgb(projected: Sequence[Tensor],
           percentiles: Tuple[float, float] = LOW_HIGH_PERCENTILES) -> List[np.ndarray]:
    """(B, 3, h, w) projections -> (B, h, w, 3) uint8, one range per component for all."""
    flat = torch.cat([p.permute(1, 0, 2, 3).reshape(p.shape[1], -1) for p in projected], 1)
    low = torch.quantile(flat, percentiles[0] / 100, dim=1).view(1, -1, 1, 1)
    high = torch.quantile(flat, percentiles[1] / 100, dim=1).view(1, -1, 1, 1)
    scale = torch.where(high > low, high - low, torch.ones_like(high))
    return [((p - low) / scale).clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).numpy()
            for p in projected]


def class_sums(features: Tensor, labels: Tensor, num_classes: int,
               ignore_index: int = IGNORE_INDEX) -> Tuple[Tensor, Tensor]:
    """Per-class sums of features and their weights, for class means at a coarse stride.

    Each feature pixel covers a block of label pixels; it counts for class c with the fraction
    of its block labelled c (``ignore_index`` pixels count for no class).

    Args:
        features: (B, C, h, w).
        labels: (B, H, W) integer train ids, H and W multiples of h and w.

    Returns:
        ``sums`` (K, C) float64 and ``weights`` (K,) float64: the mean of class c is
        ``sums[c] / weights[c]`` where ``weights[c] > 0``.
    """
    height, width = features.shape[-2:]
    valid = (labels != ignore_index) & (labels >= 0) & (labels < num_classes)
    one_hot = F.one_hot(torch.where(valid, labels, 0).long(), num_classes)
    one_hot = (one_hot * valid.unsqueeze(-1)).permute(0, 3, 1, 2).double()
    fractions = F.adaptive_avg_pool2d(one_hot, (height, width))  # (B, K, h, w)
    sums = torch.einsum('bkhw,bchw->kc', fractions, features.double())
    return sums, fractions.sum((0, 2, 3))


def class_cosines(source: Tuple[Tensor, Tensor], target: Tuple[Tensor, Tensor]
                  ) -> Dict[int, float]:
    """Cosine similarity of the class means of two domains, for classes present in both.

    Args:
        source, target: ``(sums, weights)`` of :func:`class_sums` (summed over a domain).
    """
    (source_sums, source_weights), (target_sums, target_weights) = source, target
    shared = ((source_weights > 0) & (target_weights > 0)).nonzero().flatten().tolist()
    result = {}
    for c in shared:
        a = source_sums[c] / source_weights[c]
        b = target_sums[c] / target_weights[c]
        result[c] = float(F.cosine_similarity(a, b, dim=0))
    return result


# ---------------------------------------------------------------- drawing (numpy, OpenCV)

def text_panel(lines: Sequence[str], width: int, height: int, scale: float = 0.5) -> np.ndarray:
    """A dark panel with white text lines (left-aligned, top to bottom)."""
    panel = np.empty((height, width, 3), np.uint8)
    panel[:] = _BACKGROUND
    first, step = int(32 * scale), int(40 * scale)
    for index, line in enumerate(lines):
        cv2.putText(panel, line, (6, first + step * index), _FONT, scale, _TEXT, 1, cv2.LINE_AA)
    return panel


def enlarge(image: np.ndarray, size: Tuple[int, int], label: bool = True) -> np.ndarray:
    """Resize to (width, height): nearest for feature pixels and labels, else area/linear."""
    if image.shape[1] == size[0] and image.shape[0] == size[1]:
        return image
    if label:
        interpolation = cv2.INTER_NEAREST
    else:
        interpolation = cv2.INTER_AREA if image.shape[1] > size[0] else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interpolation)


def grid(cells: Sequence[Sequence[np.ndarray]], row_titles: Sequence[str],
         column_titles: Sequence[str], title: str, title_width: int = 150,
         gap: int = 4) -> np.ndarray:
    """Cells (all of one size) in rows and columns with a title, row and column headings."""
    cell_h, cell_w = cells[0][0].shape[:2]
    columns = max(len(row) for row in cells)
    width = title_width + columns * (cell_w + gap)
    blank = np.empty((cell_h, cell_w, 3), np.uint8)
    blank[:] = _BACKGROUND
    spacer = np.empty((cell_h, gap, 3), np.uint8)
    spacer[:] = _BACKGROUND
    header = [text_panel([title], width, 30, 0.6)]
    heads = [text_panel([''], title_width, 26)]
    for name in column_titles:
        heads += [text_panel([name], cell_w, 26), text_panel([''], gap, 26)]
    header.append(np.concatenate(heads, axis=1))
    rows = []
    for name, row in zip(row_titles, cells):
        parts = [text_panel(name.split('\n'), title_width, cell_h)]
        for cell in list(row) + [blank] * (columns - len(row)):
            parts += [cell, spacer]
        rows.append(np.concatenate(parts, axis=1))
        rows.append(np.full((gap, width, 3), _BACKGROUND[0], np.uint8))
    return np.concatenate(header + rows, axis=0)


def colour_bar(width: int, low: float, high: float, label: str) -> np.ndarray:
    """A horizontal viridis bar from ``low`` to ``high`` with its end values and a label."""
    ramp = np.linspace(0, 255, max(2, width - 160)).astype(np.uint8)[None].repeat(16, 0)
    bar = cv2.applyColorMap(ramp, cv2.COLORMAP_VIRIDIS)[..., ::-1]
    canvas = text_panel([''], width, 48)
    canvas[6:22, 80:80 + bar.shape[1]] = bar
    cv2.putText(canvas, f'{low:.2f}', (8, 20), _FONT, 0.5, _TEXT, 1, cv2.LINE_AA)
    cv2.putText(canvas, f'{high:.2f}', (88 + bar.shape[1], 20), _FONT, 0.5, _TEXT, 1,
                cv2.LINE_AA)
    cv2.putText(canvas, label, (80, 42), _FONT, 0.45, _TEXT, 1, cv2.LINE_AA)
    return canvas


def heat_cell(value: Optional[float], low: float, high: float,
              size: Tuple[int, int] = (110, 44)) -> np.ndarray:
    """One cell of a heat map: viridis colour of ``value`` in [low, high], the number on it."""
    cell = np.empty((size[1], size[0], 3), np.uint8)
    if value is None:
        cell[:] = _BACKGROUND
        text, colour = 'n/a', _TEXT
    else:
        level = 0.0 if high <= low else (value - low) / (high - low)
        index = np.uint8(round(255 * min(1.0, max(0.0, level))))
        cell[:] = cv2.applyColorMap(np.array([[index]], np.uint8), cv2.COLORMAP_VIRIDIS)[0, 0,
                                                                                         ::-1]
        text, colour = f'{value:.3f}', (0, 0, 0) if level > 0.6 else _TEXT
    cv2.putText(cell, text, (size[0] // 2 - 24, size[1] // 2 + 6), _FONT, 0.55, colour, 1,
                cv2.LINE_AA)
    return cell
