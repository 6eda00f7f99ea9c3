"""Test-server submissions: predictions in each benchmark's required layout, zipped.

Used as the evaluator of an unlabelled test split (``tools/test.py CONFIG CKPT
--format-only --out DIR``); it computes no metric. Layouts follow
docs/test-servers.md:

* ``cityscapes``: label ids (not train ids), one PNG per image named after the
  image (``berlin_000000_000019_leftImg8bit.png``), flat; the zip holds the PNGs.
* ``acdc``: train ids 0-18, one PNG per image named after the image
  (``GOPR0475_frame_000041_rgb_anon.png``), all four conditions in ONE flat folder
  ``labelTrainIds/``; the zip holds the PNGs (flat, no folders, no extra files).
* ``dark_zurich``: the zip holds exactly three folders at its root, each with every
  test image under its own name: ``labelTrainIds/`` (train ids), ``labelTrainIds_invalid/``
  (a copy: no pixel is declared invalid) and ``confidence/`` (uint16 PNG of the max
  softmax probability x 65535).

Predictions are written at the image's original size (the segmentor resizes its
output to ``ori_shape``); a mismatch is an error, since the servers reject it.
"""
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from cityscapesscripts.helpers.labels import labels as CS_LABELS
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from PIL import Image

from mmseg.registry import METRICS

from .metrics.iou_metric import pixel_data, sample_field

#: Folders inside each benchmark's zip (empty string: files at the zip root).
FOLDERS: Dict[str, Sequence[str]] = {
    'cityscapes': ('', ),
    'acdc': ('labelTrainIds', ),
    'dark_zurich': ('labelTrainIds', 'labelTrainIds_invalid', 'confidence'),
}
#: Test-split sizes of the real benchmarks (a different count is reported, not refused).
EXPECTED_IMAGES = {'cityscapes': 1525, 'acdc': 2000, 'dark_zurich': 151}
#: How the zip is laid out inside it (folder name in the zip -> folder on disk).
ZIP_ROOT_FOLDERS = {'cityscapes': False, 'acdc': False, 'dark_zurich': True}


def train_id_to_label_id() -> np.ndarray:
    """Lookup table: Cityscapes train id (0-18, 255) -> label id (7..33, 0 for 255)."""
    table = np.zeros(256, np.uint8)
    for label in CS_LABELS:
        if 0 <= label.trainId < 255 and not label.ignoreInEval:
            table[label.trainId] = label.id
    return table


def _write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@METRICS.register_module()
class SubmissionWriter(BaseMetric):
    """Write the predictions of a test split in a server's layout, zip them; no metric.

    Files go to ``<out_dir>/<benchmark>/<folder>/<image name>``; the archive to
    ``<out_dir>/<benchmark>.zip``.

    Args:
        benchmark: 'cityscapes', 'acdc' or 'dark_zurich'.
        out_dir: Output folder.
        collect_device: 'cpu' or 'gpu'.
        prefix: Unused (no metric is reported); kept for mmengine.
    """

    def __init__(self, benchmark: str, out_dir: str, collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if benchmark not in FOLDERS:
            raise ValueError(f'SubmissionWriter: benchmark must be one of {sorted(FOLDERS)} '
                             f'(the benchmarks with a test server), got {benchmark!r}')
        self.benchmark = benchmark
        self.root = Path(out_dir) / benchmark
        self._label_ids = train_id_to_label_id()

    def _folder(self, name: str) -> Path:
        return self.root / name if name else self.root

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Write each sample's prediction files; remember their names."""
        for sample in data_samples:
            name = Path(sample_field(sample, 'img_path')).name
            pred = pixel_data(sample, 'pred_sem_seg').squeeze(0).cpu()
            ori_shape = tuple(sample_field(sample, 'ori_shape'))[:2]
            if tuple(pred.shape) != ori_shape:
                raise ValueError(f'{name}: prediction {tuple(pred.shape)} is not at the image '
                                 f'size {ori_shape}; the test server needs the original size')
            train_ids = pred.numpy().astype(np.uint8)
            if self.benchmark == 'cityscapes':
                _write_png(self.root / name, self._label_ids[train_ids])
            else:
                _write_png(self.root / 'labelTrainIds' / name, train_ids)
            if self.benchmark == 'dark_zurich':
                _write_png(self.root / 'labelTrainIds_invalid' / name, train_ids)
                logits = pixel_data(sample, 'seg_logits').float().cpu()
                confidence = torch.softmax(logits, dim=0).max(0).values
                _write_png(self.root / 'confidence' / name,
                           np.round(confidence.numpy() * 65535).astype(np.uint16))
            self.results.append(name)

    def compute_metrics(self, results: List[str]) -> Dict[str, float]:
        """Zip the written files (members named as the server expects); no metric."""
        archive = write_zip(self.root, self.benchmark, sorted(results))
        expected = EXPECTED_IMAGES[self.benchmark]
        note = '' if len(results) == expected else \
            f' (the real {self.benchmark} test split has {expected})'
        print_log(f'{self.benchmark} submission: {len(results)} images{note} -> {archive}',
                  logger='current')
        return {}


def zip_members(benchmark: str, names: Sequence[str]) -> List[str]:
    """The member names of a benchmark's submission zip for these image names."""
    folders = FOLDERS[benchmark] if ZIP_ROOT_FOLDERS[benchmark] else ('', )
    return [f'{folder}/{name}' if folder else name for folder in folders for name in names]


def write_zip(root: Path, benchmark: str, names: Sequence[str]) -> Path:
    """``<root>.zip`` with :func:`zip_members` (only the files of this run)."""
    archive = root.with_suffix('.zip')
    source = FOLDERS[benchmark][0]
    with zipfile.ZipFile(archive, 'w', compression=zipfile.ZIP_DEFLATED) as zf:
        for member in zip_members(benchmark, names):
            folder, _, name = member.rpartition('/')
            zf.write(root / (folder or source) / name, member)
    return archive
