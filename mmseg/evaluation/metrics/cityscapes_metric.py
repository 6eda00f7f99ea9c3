"""The official Cityscapes pixel-level evaluation, through cityscapesscripts.

Predictions (train ids) are mapped back to Cityscapes label ids, written as
PNGs to a (temporary) folder, and compared with the ``*_labelIds.png`` ground
truth found next to each image's ``seg_map_path`` by
``evalPixelLevelSemanticLabeling.evaluateImgLists``. Instance-level scores are
switched off: they use ``np.in1d``, which numpy 2.4 removed (docs/pitfalls.md
#6), and they need instance ground truth.
"""
import copy
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from mmseg.registry import METRICS
from mmseg.utils import CLASSES, atomic_path
from .iou_metric import pixel_data, sample_field


def train_id_to_label_id_lut() -> np.ndarray:
    """A 256-entry lookup table: train id -> Cityscapes label id (0 'unlabeled' elsewhere)."""
    from cityscapesscripts.helpers.labels import labels
    lut = np.zeros(256, dtype=np.uint8)
    for label in labels:
        if 0 <= label.trainId < 255 and label.id >= 0:
            lut[label.trainId] = label.id
    return lut


def label_ids_path(seg_map_path: str, train_suffix: str = 'labelTrainIds',
                   id_suffix: str = 'labelIds') -> str:
    """``.../x_gtFine_labelTrainIds.png`` -> ``.../x_gtFine_labelIds.png`` (must exist)."""
    name = os.path.basename(seg_map_path)
    if train_suffix not in name:
        raise ValueError(f'CityscapesMetric: seg_map_path {seg_map_path} does not contain '
                         f'{train_suffix!r}; cannot locate its *_{id_suffix}.png ground truth')
    path = os.path.join(os.path.dirname(seg_map_path), name.replace(train_suffix, id_suffix))
    if not os.path.isfile(path):
        raise FileNotFoundError(f'CityscapesMetric: ground truth {path} not found (expected the '
                                f'released *_{id_suffix}.png next to {seg_map_path})')
    return path


@METRICS.register_module()
class CityscapesMetric(BaseMetric):
    """Official Cityscapes pixel-level mIoU (percent) over the 19 evaluated classes.

    Args:
        output_dir (str, optional): where the label-id predictions are written;
            None: a temporary folder, removed after evaluation. Defaults to None.
        keep_results (bool): keep ``output_dir``'s predictions. Defaults to False.
        collect_device (str): 'cpu' or 'gpu'. Defaults to 'cpu'.
        prefix (str, optional): metric name prefix.
    """

    default_prefix = ''  # no prefix, and no mmengine warning about a missing one

    def __init__(self, output_dir: Optional[str] = None, keep_results: bool = False,
                 collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.output_dir = output_dir
        self.keep_results = keep_results or output_dir is not None
        self._work_dir: Optional[str] = None
        self._lut = train_id_to_label_id_lut()

    def _prediction_dir(self) -> str:
        if self._work_dir is None:
            if self.output_dir is not None:
                Path(self.output_dir).mkdir(parents=True, exist_ok=True)
                self._work_dir = self.output_dir
            else:
                self._work_dir = tempfile.mkdtemp(prefix='cityscapes_eval_')
        return self._work_dir

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Write each prediction as a label-id PNG; store (prediction, ground truth) paths."""
        out_dir = self._prediction_dir()
        for sample in data_samples:
            pred = pixel_data(sample, 'pred_sem_seg').squeeze().cpu().numpy().astype(np.uint8)
            gt_path = label_ids_path(str(sample_field(sample, 'seg_map_path')))
            stem = Path(str(sample_field(sample, 'img_path'))).stem
            pred_path = os.path.join(out_dir, f'{stem}.png')
            with atomic_path(pred_path) as tmp:
                if not cv2.imwrite(str(tmp), self._lut[pred]):
                    raise OSError(f'CityscapesMetric: could not write {pred_path}')
            self.results.append((pred_path, gt_path))

    def compute_metrics(self, results: List[Tuple[str, str]]) -> Dict[str, float]:
        """Run cityscapesscripts on all pairs; mIoU, category mIoU and per-class IoU (percent)."""
        import cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling as cs_eval
        args = copy.copy(cs_eval.args)
        args.evalInstLevelScore = False
        args.evalPixelAccuracy = False
        args.JSONOutput = False
        args.quiet = True
        args.colorized = False
        args.bold = args.nocol = ''
        pred_paths, gt_paths = zip(*results) if results else ((), ())
        try:
            scores = cs_eval.evaluateImgLists(list(pred_paths), list(gt_paths), args)
        except SystemExit as exc:  # cityscapesscripts' printError exits the process
            raise RuntimeError(f'cityscapesscripts evaluation failed (see the message above); '
                               f'predictions in {self._work_dir}') from exc
        finally:
            self._cleanup()
        metrics = dict(mIoU=scores['averageScoreClasses'] * 100,
                       mIoU_categories=scores['averageScoreCategories'] * 100)
        for name in CLASSES:  # the 19 evaluated classes; NaN when absent everywhere
            metrics[f'IoU.{name}'] = scores['classScores'][name] * 100
        print_log(f"Cityscapes evaluation: mIoU {metrics['mIoU']:.2f}, "
                  f"category mIoU {metrics['mIoU_categories']:.2f}", logger='current')
        return metrics

    def _cleanup(self) -> None:
        if self._work_dir is not None and not self.keep_results:
            shutil.rmtree(self._work_dir, ignore_errors=True)
        self._work_dir = None
