"""IoUMetric against hand-built histograms, and through mmengine's Evaluator."""
import math

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.registry import DefaultScope
from mmengine.structures import PixelData

from mmseg.evaluation import IoUMetric
from mmseg.evaluation.metrics import intersect_and_union
from mmseg.structures import SegDataSample

META = dict(classes=('a', 'b', 'c', 'd'))


def make_sample(pred, label):
    sample = SegDataSample()
    sample.pred_sem_seg = PixelData(data=torch.tensor(pred)[None])
    sample.gt_sem_seg = PixelData(data=torch.tensor(label)[None])
    return sample


# Image 1: label [[0, 0, 1], [1, 255, 2]], prediction [[0, 1, 1], [1, 2, 0]].
IMG1 = ([[0, 1, 1], [1, 2, 0]], [[0, 0, 1], [1, 255, 2]])
# Image 2: label [[2, 2], [0, 255]], prediction [[2, 0], [0, 1]].
IMG2 = ([[2, 0], [0, 1]], [[2, 2], [0, 255]])


def test_intersect_and_union_by_hand():
    pred, label = map(torch.tensor, IMG1)
    inter, union, area_pred, area_label = intersect_and_union(pred, label, 4, 255)
    # Valid pixels: (0|0) (1|0) (1|1) (1|1) (0|2). The ignored pixel's "2" is not counted.
    assert inter.tolist() == [1, 2, 0, 0]
    assert area_pred.tolist() == [2, 3, 0, 0]
    assert area_label.tolist() == [2, 2, 1, 0]
    assert union.tolist() == [3, 3, 1, 0]
    assert inter.dtype == torch.float64


def test_metric_accumulates_over_the_set_with_nan_mean():
    metric = IoUMetric(prefix='cs')
    metric.dataset_meta = META
    metric.process({}, [make_sample(*IMG1), make_sample(*IMG2)])
    results = metric.evaluate(2)
    # Summed: intersection [2, 2, 1, 0], pred [4, 3, 1, 0], label [3, 2, 3, 0],
    # union = pred + label - intersection = [5, 3, 3, 0].
    iou = [2 / 5, 2 / 3, 1 / 3]
    acc = [2 / 3, 2 / 2, 1 / 3]
    assert results['cs/mIoU'] == pytest.approx(100 * sum(iou) / 3)  # class d is NaN, left out
    assert results['cs/mAcc'] == pytest.approx(100 * sum(acc) / 3)
    assert results['cs/aAcc'] == pytest.approx(100 * 5 / 8)
    assert results['cs/IoU.b'] == pytest.approx(200 / 3)
    assert math.isnan(results['cs/IoU.d']) and math.isnan(results['cs/Acc.d'])
    assert metric.results == []  # reset after evaluation


def test_nan_to_num_and_bad_values():
    metric = IoUMetric(nan_to_num=0)
    metric.dataset_meta = META
    metric.process({}, [make_sample(*IMG1)])
    results = metric.evaluate(1)
    assert results['IoU.d'] == 0 and not np.isnan(results['mIoU'])
    with pytest.raises(ValueError, match='label values'):
        intersect_and_union(torch.zeros(2, 2), torch.full((2, 2), 7), 4)
    with pytest.raises(ValueError, match='prediction shape'):
        intersect_and_union(torch.zeros(2, 2), torch.zeros(2, 3), 4)
    with pytest.raises(ValueError, match='mIoU'):
        IoUMetric(iou_metrics=['mDice'])


def test_through_the_evaluator_with_the_runner_scope():
    # The Runner builds metrics with default_scope 'mmseg'; the Evaluator passes dicts.
    with DefaultScope.overwrite_default_scope('mmseg'):
        evaluator = Evaluator(dict(type='IoUMetric'))
    evaluator.dataset_meta = META
    evaluator.process([make_sample(*IMG1), make_sample(*IMG2)])
    results = evaluator.evaluate(2)
    assert results['mIoU'] == pytest.approx(100 * (2 / 5 + 2 / 3 + 1 / 3) / 3)
