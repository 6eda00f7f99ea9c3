"""Debug images of DACS self-training, and the hook telling DACS where to write them.

Every ``debug_img_interval`` iterations DACS writes, per image of the batch, one
PNG grid: source image, its label, target image, pseudo-label, pseudo-label
weight, mixed image, mixed label, to ``<work_dir>/debug/<iter>_<i>.png``.
"""
from pathlib import Path
from typing import Dict, List

import cv2
import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmseg.registry import HOOKS
from mmseg.utils import atomic_path, colorize

#: Panel order of a debug grid (row-major, 4 per row).
PANELS = ('source', 'source label', 'target', 'pseudo-label', 'pseudo weight', 'mixed image',
          'mixed label', 'mix mask')
_COLUMNS = 4


def to_rgb_uint8(image01: torch.Tensor) -> np.ndarray:
    """(3, H, W) float image in [0, 1] -> (H, W, 3) uint8."""
    array = image01.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    return (array * 255 + 0.5).astype(np.uint8)


def label_to_rgb(label: torch.Tensor) -> np.ndarray:
    """(H, W) or (1, H, W) train ids -> (H, W, 3) palette colours (255 black)."""
    return colorize(label.detach().reshape(label.shape[-2:]).cpu().numpy())


def weight_to_rgb(weight: torch.Tensor) -> np.ndarray:
    """(H, W) weight in [0, 1] -> grey (H, W, 3) uint8."""
    grey = (weight.detach().float().reshape(weight.shape[-2:]).clamp(0, 1).cpu().numpy() * 255
            + 0.5).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def make_grid(panels: Dict[str, np.ndarray], columns: int = _COLUMNS) -> np.ndarray:
    """Tile RGB panels of one size into rows of ``columns``, each captioned with its name."""
    names = list(panels)
    height, width = panels[names[0]].shape[:2]
    rows = -(-len(names) // columns)
    grid = np.zeros((rows * height, columns * width, 3), np.uint8)
    for index, name in enumerate(names):
        panel = np.ascontiguousarray(panels[name])
        if panel.shape[:2] != (height, width):
            panel = cv2.resize(panel, (width, height), interpolation=cv2.INTER_NEAREST)
        cv2.putText(panel, name, (2, 12), cv2.FONT_HERSHEY_PLAIN, 0.8, (255, 255, 255), 1,
                    cv2.LINE_AA)
        row, col = divmod(index, columns)
        grid[row * height:(row + 1) * height, col * width:(col + 1) * width] = panel
    return grid


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Write an RGB uint8 image as PNG, atomically."""
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
            raise OSError(f'cannot write debug image {path}')


def save_debug_images(out_dir: Path, iteration: int,
                      tensors: Dict[str, torch.Tensor]) -> List[Path]:
    """Write one grid per batch image; returns the written paths.

    Args:
        out_dir (Path): the debug folder (created if missing).
        iteration (int): the training iteration (names the files).
        tensors (dict): batched tensors keyed by :data:`PANELS`: images
            (B, 3, H, W) in [0, 1], labels (B, H, W) int64, weights/masks
            (B, H, W) float in [0, 1].
    """
    paths = []
    batch = next(iter(tensors.values())).shape[0]
    for i in range(batch):
        panels = {}
        for name in PANELS:
            if name not in tensors:
                continue
            value = tensors[name][i]
            if value.dim() == 3 and value.shape[0] == 3:
                panels[name] = to_rgb_uint8(value)
            elif value.is_floating_point():
                panels[name] = weight_to_rgb(value)
            else:
                panels[name] = label_to_rgb(value)
        path = Path(out_dir) / f'{iteration:06d}_{i}.png'
        write_png(path, make_grid(panels))
        paths.append(path)
    return paths


@HOOKS.register_module()
class UDADebugHook(Hook):
    """Points a UDA model's debug images at ``<work_dir>/<subdir>`` before training.

    Args:
        subdir (str): folder under the run's work dir. Defaults to 'debug'.
    """

    priority = 'VERY_LOW'

    def __init__(self, subdir: str = 'debug') -> None:
        self.subdir = subdir

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if hasattr(model, 'debug_dir'):
            model.debug_dir = Path(runner.work_dir) / self.subdir

