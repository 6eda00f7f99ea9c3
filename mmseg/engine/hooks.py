"""Hooks: prediction figures (image | ground truth | prediction | errors) in validation/test."""
import os.path as osp
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np
from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from mmseg.registry import HOOKS
from mmseg.utils import atomic_path, prediction_figure


def write_prediction_images(out_dir: Optional[Path], stem: str, image_rgb: Optional[np.ndarray],
                            label: np.ndarray, raw_dir: Optional[Path] = None,
                            gt: Optional[np.ndarray] = None) -> list:
    """Write ``<stem>.png``, the prediction figure of :func:`mmseg.utils.prediction_figure`.

    The figure shows the image, the ground truth (with ``gt``), the prediction and the error
    map (with ``gt``), with titles and a class-colour legend. With ``raw_dir``, also
    ``raw_dir/<stem>.png``: the train ids as a single-channel PNG, for offline evaluation.

    Args:
        out_dir (Path, optional): Folder (created if needed); None writes no figure.
        stem (str): File name stem.
        image_rgb (np.ndarray | None): (H, W, 3) uint8 RGB image.
        label (np.ndarray): (H, W) predicted train ids.
        raw_dir (Path, optional): Folder for the train-id PNGs.
        gt (np.ndarray, optional): (H, W) ground-truth train ids.

    Returns:
        list[Path]: The files written.
    """
    written = []
    if out_dir is not None:
        target = Path(out_dir) / f'{stem}.png'
        figure = prediction_figure(image_rgb, label, gt)
        with atomic_path(target) as tmp:
            cv2.imwrite(str(tmp), cv2.cvtColor(figure, cv2.COLOR_RGB2BGR))
        written.append(target)
    if raw_dir is not None:
        target = Path(raw_dir) / f'{stem}.png'
        with atomic_path(target) as tmp:
            cv2.imwrite(str(tmp), label.astype(np.uint8))
        written.append(target)
    return written


def read_rgb(path: str) -> Optional[np.ndarray]:
    """Read an image file as RGB uint8, or None if it cannot be read."""
    image = cv2.imread(path, cv2.IMREAD_COLOR) if path and osp.isfile(path) else None
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@HOOKS.register_module()
class SegPredictionWriterHook(Hook):
    """Save prediction figures of validation/test images (the one writer of prediction images).

    Each figure is image | ground truth / prediction | error map with a class legend (ground
    truth and errors where the sample has labels), see :func:`write_prediction_images`.
    Files go to ``<out_dir>/<domain>/`` (test) or ``<out_dir>/iter_<N>/<domain>/``
    (validation during training), where the domain comes from a
    :class:`MultiValLoop`/``MultiTestLoop`` (``val`` or ``test`` otherwise).
    ``tools/test.py --show-dir/--out`` reconfigure this hook when the config has one, so
    images are never written twice.

    Args:
        out_dir (str, optional): Output folder; defaults to ``<work_dir>/predictions``.
        max_per_domain (int, optional): Write at most this many images per
            domain and evaluation (None = all). Defaults to None.
        stages (Sequence[str]): Any of 'val', 'test'. Defaults to both.
        raw_dir (str, optional): Also write train-id PNGs there (per domain).
        show (bool): Write the figures. Defaults to True.
    """

    priority = 'NORMAL'

    def __init__(self, out_dir: Optional[str] = None, max_per_domain: Optional[int] = None,
                 stages: Sequence[str] = ('val', 'test'), raw_dir: Optional[str] = None,
                 show: bool = True) -> None:
        unknown = set(stages) - {'val', 'test'}
        if unknown:
            raise ValueError(f"SegPredictionWriterHook: stages must be 'val' and/or 'test', "
                             f'got {sorted(unknown)}')
        self.out_dir = out_dir
        self.max_per_domain = max_per_domain
        self.stages = tuple(stages)
        self.raw_dir = raw_dir
        self.show = show
        self._counts: dict = {}

    def _folder(self, runner, stage: str) -> Path:
        loop = runner.val_loop if stage == 'val' else runner.test_loop
        domain = getattr(loop, 'current_domain', stage)
        root = Path(self.out_dir or osp.join(runner.work_dir, 'predictions'))
        if stage == 'val':
            root = root / f'iter_{runner.iter}'
        return root / domain

    def _write(self, runner, stage: str, outputs) -> None:
        if stage not in self.stages or not is_main_process():
            return
        folder = self._folder(runner, stage)
        for sample in outputs:
            count = self._counts.get(folder, 0)
            if self.max_per_domain is not None and count >= self.max_per_domain:
                return
            self._counts[folder] = count + 1
            img_path = sample.metainfo.get('img_path', '')
            stem = Path(img_path).stem if img_path else f'{count:06d}'
            label = sample.pred_sem_seg.data.squeeze(0).cpu().numpy()
            raw = Path(self.raw_dir) / folder.name if self.raw_dir else None
            image = gt = None
            if self.show:
                image = read_rgb(img_path)
                if 'gt_sem_seg' in sample:
                    gt = sample.gt_sem_seg.data.squeeze(0).cpu().numpy()
            write_prediction_images(folder if self.show else None, stem, image, label, raw,
                                    gt=gt)

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._write(runner, 'val', outputs or [])

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._write(runner, 'test', outputs or [])
