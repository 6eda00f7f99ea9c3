"""Mean IoU with mmsegmentation's conventions (docs/method.md §6).

Per image, histograms of the intersection, union, predicted and labelled areas
per class over non-ignored pixels; summed over the whole set in float64. Then
IoU_c = I/U, Acc_c = I/L, aAcc = sum(I)/sum(L), mIoU and mAcc = nan-means over
the classes (a class absent from labels and predictions is NaN and left out).
Values are reported in percent, unrounded; the printed table rounds to 2 decimals.
"""
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from mmseg.registry import METRICS
from mmseg.utils import CLASSES, IGNORE_INDEX


def sample_field(sample: Any, name: str) -> Any:
    """``sample[name]`` of the dicts mmengine's Evaluator passes, or a data sample's field."""
    if isinstance(sample, dict):
        if name not in sample:
            raise KeyError(f'data sample has no {name!r} (keys: {sorted(sample)})')
        return sample[name]
    if name not in sample:
        raise KeyError(f'data sample has no {name!r}')
    return sample.get(name)


def pixel_data(sample: Any, name: str) -> torch.Tensor:
    """The ``data`` tensor of a PixelData field (dict or object form)."""
    field = sample_field(sample, name)
    return field['data'] if isinstance(field, dict) else field.data


def intersect_and_union(pred: torch.Tensor, label: torch.Tensor, num_classes: int,
                        ignore_index: int = IGNORE_INDEX
                        ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-class areas of one image, over the pixels whose label is not ignored.

    Args:
        pred (Tensor): (H, W) predicted class ids.
        label (Tensor): (H, W) labels.
        num_classes (int): number of classes.
        ignore_index (int): label value left out. Defaults to 255.

    Returns:
        tuple[Tensor]: (intersection, union, predicted area, label area), each
        (num_classes,) float64.
    """
    if pred.shape != label.shape:
        raise ValueError(f'prediction shape {tuple(pred.shape)} != label shape '
                         f'{tuple(label.shape)}; predictions must be at the label size')
    valid = label != ignore_index
    pred, label = pred[valid].long(), label[valid].long()
    if label.numel() and (label.min() < 0 or label.max() >= num_classes):
        raise ValueError(f'label values must be in 0..{num_classes - 1} or {ignore_index}, '
                         f'found {sorted(set(label.unique().tolist()))}')

    def hist(values: torch.Tensor) -> torch.Tensor:
        values = values[(values >= 0) & (values < num_classes)]
        return torch.bincount(values, minlength=num_classes).double()

    area_intersect = hist(pred[pred == label])
    area_pred, area_label = hist(pred), hist(label)
    return area_intersect, area_pred + area_label - area_intersect, area_pred, area_label


def summarize_areas(total_intersect: np.ndarray, total_union: np.ndarray,
                    total_label: np.ndarray) -> Dict[str, np.ndarray]:
    """aAcc (scalar), IoU and Acc (per class) in percent from summed areas (float64)."""
    with np.errstate(divide='ignore', invalid='ignore'):
        return dict(aAcc=np.float64(total_intersect.sum() / total_label.sum() * 100),
                    IoU=total_intersect / total_union * 100,
                    Acc=total_intersect / total_label * 100)


def format_table(class_names: Sequence[str], iou: np.ndarray, acc: np.ndarray) -> str:
    """A per-class text table with 2 decimals."""
    width = max(len(name) for name in list(class_names) + ['Class'])
    lines = [f"| {'Class':<{width}} |   IoU  |   Acc  |",
             f"|{'-' * (width + 2)}|--------|--------|"]
    for name, class_iou, class_acc in zip(class_names, iou, acc):
        lines.append(f'| {name:<{width}} | {class_iou:6.2f} | {class_acc:6.2f} |')
    return '\n'.join(lines)


@METRICS.register_module()
class IoUMetric(BaseMetric):
    """mIoU, mAcc, aAcc and per-class IoU / Acc, in percent.

    Args:
        ignore_index (int): ignored label value. Defaults to 255.
        iou_metrics (Sequence[str]): only 'mIoU' is supported. Defaults to ['mIoU'].
        nan_to_num (float, optional): replace NaN per-class values in the
            output by this. Defaults to None (keep NaN).
        collect_device (str): 'cpu' or 'gpu'. Defaults to 'cpu'.
        prefix (str, optional): metric name prefix (e.g. a domain name).
    """

    # No prefix by default: the multi-domain loops name metrics '<domain>/<name>'. An empty
    # default (not None) also keeps mmengine from warning "The prefix is not set".
    default_prefix = ''

    def __init__(self, ignore_index: int = IGNORE_INDEX, iou_metrics: Sequence[str] = ('mIoU', ),
                 nan_to_num: Optional[float] = None, collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if isinstance(iou_metrics, str):
            iou_metrics = [iou_metrics]
        if set(iou_metrics) - {'mIoU'}:
            raise ValueError(f"IoUMetric: iou_metrics supports only 'mIoU', got {iou_metrics}")
        self.ignore_index = ignore_index
        self.nan_to_num = nan_to_num

    @property
    def class_names(self) -> Tuple[str, ...]:
        meta = self.dataset_meta or {}
        return tuple(meta.get('classes', CLASSES))

    @property
    def subsets(self) -> Tuple[str, ...]:
        """Subsets reported on their own as well (ACDC's conditions), from the dataset."""
        return tuple((self.dataset_meta or {}).get('subsets') or ())

    def _subset_of(self, sample: Any) -> Optional[str]:
        """The subset whose name is a folder of the sample's image path (or None)."""
        if not self.subsets:
            return None
        for part in reversed(Path(str(sample_field(sample, 'img_path'))).parts[:-1]):
            if part in self.subsets:  # the innermost folder named like a subset
                return part
        return None

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Store the four per-class histograms of every image (and its subset).

        An image without labels (a test split) is recorded as None: a set of only
        such images yields no metric; a mix is an error.
        """
        num_classes = len(self.class_names)
        for sample in data_samples:
            has_label = ('gt_sem_seg' in sample) if isinstance(sample, dict) else \
                sample.get('gt_sem_seg') is not None
            if not has_label:
                self.results.append(None)
                continue
            pred = pixel_data(sample, 'pred_sem_seg').squeeze()
            label = pixel_data(sample, 'gt_sem_seg').squeeze().to(pred.device)
            areas = intersect_and_union(pred, label, num_classes, self.ignore_index)
            self.results.append(tuple(area.cpu() for area in areas) + (self._subset_of(sample), ))

    def compute_metrics(self, results: List[Optional[tuple]]) -> Dict[str, float]:
        """Sum the histograms over the set and compute the metrics (percent).

        With subsets (ACDC: fog, night, rain, snow), also ``<subset>/mIoU``,
        ``<subset>/IoU.<class>`` ... over the images of each subset.
        """
        labelled = [r for r in results if r is not None]
        if not labelled:
            print_log('IoUMetric: the images have no labels (a test split?): no metric computed; '
                      'use tools/test.py --format-only to write a submission', logger='current')
            return {}
        if len(labelled) != len(results):
            raise ValueError(f'IoUMetric: {len(results) - len(labelled)} of {len(results)} '
                             'images have no label; evaluate labelled and unlabelled sets apart')
        metrics = self._metrics([r[:4] for r in labelled], log_table=True)
        for subset in self.subsets:
            part = [r[:4] for r in labelled if r[4] == subset]
            if part:
                sub = self._metrics(part, log_table=False)
                metrics.update({f'{subset}/{k}': v for k, v in sub.items()})
                print_log(f'{subset}: mIoU {sub["mIoU"]:.2f} over {len(part)} images',
                          logger='current')
        return metrics

    def _metrics(self, results: List[tuple], log_table: bool) -> Dict[str, float]:
        totals = [torch.stack(parts).sum(0).numpy() for parts in zip(*results)]
        total_intersect, total_union, _, total_label = totals
        summary = summarize_areas(total_intersect, total_union, total_label)
        iou, acc = summary['IoU'], summary['Acc']
        if log_table:
            print_log('per class results:\n' + format_table(self.class_names, iou, acc),
                      logger='current')
        if self.nan_to_num is not None:
            iou = np.nan_to_num(iou, nan=self.nan_to_num)
            acc = np.nan_to_num(acc, nan=self.nan_to_num)
        metrics = OrderedDict(aAcc=float(summary['aAcc']),
                              mIoU=float(np.nanmean(summary['IoU'])),
                              mAcc=float(np.nanmean(summary['Acc'])))
        if log_table:
            print_log('summary: ' + ', '.join(f'{k} {v:.2f}' for k, v in metrics.items()),
                      logger='current')
        for name, class_iou, class_acc in zip(self.class_names, iou, acc):
            metrics[f'IoU.{name}'] = float(class_iou)
            metrics[f'Acc.{name}'] = float(class_acc)
        return dict(metrics)
