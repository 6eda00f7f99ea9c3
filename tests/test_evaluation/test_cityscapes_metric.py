"""The official Cityscapes evaluation agrees with IoUMetric on the same predictions."""
import math
import os

import cv2
import numpy as np
import pytest
import torch
from cityscapesscripts.helpers.labels import id2label
from mmengine.structures import PixelData

from mmseg.evaluation import CityscapesMetric, IoUMetric
from mmseg.structures import SegDataSample
from mmseg.utils import CITYSCAPES_METAINFO, CLASSES

# Label ids: road 7, sidewalk 8, building 11, pole 17, vegetation 21, sky 23,
# person 24, car 26, bus 28; ignored: unlabeled 0, ego vehicle 1, static 4, guard rail 14.
LABEL_IDS = (7, 8, 11, 17, 21, 23, 24, 26, 28)
IGNORED_IDS = (0, 1, 4, 14)


def id_to_train_id(label_ids: np.ndarray) -> np.ndarray:
    lut = np.full(256, 255, dtype=np.uint8)
    for label_id, label in id2label.items():
        if 0 <= label_id < 256 and 0 <= label.trainId < 255:
            lut[label_id] = label.trainId
    return lut[label_ids]


def write_image_pair(root, city, frame, shape, rng):
    """A blocky labelIds map with ignored regions; returns (sample with gt, gt train ids)."""
    height, width = shape
    blocks = rng.choice(LABEL_IDS + IGNORED_IDS, size=(height // 8, width // 8))
    label_ids = np.kron(blocks, np.ones((8, 8), dtype=np.int64)).astype(np.uint8)
    stem = f'{city}_000000_{frame:06d}'
    gt_dir = root / 'gtFine' / 'val' / city
    gt_dir.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(gt_dir / f'{stem}_gtFine_labelIds.png'), label_ids)
    train_ids = id_to_train_id(label_ids)
    seg_map_path = gt_dir / f'{stem}_gtFine_labelTrainIds.png'
    cv2.imwrite(str(seg_map_path), train_ids)
    img_path = root / 'leftImg8bit' / 'val' / city / f'{stem}_leftImg8bit.png'
    sample = SegDataSample(metainfo=dict(img_path=str(img_path), seg_map_path=str(seg_map_path),
                                         ori_shape=shape))
    sample.gt_sem_seg = PixelData(data=torch.from_numpy(train_ids.astype(np.int64))[None])
    return sample, train_ids


def predict(train_ids, rng):
    """The labels with 30 % of pixels replaced by random classes 0..17 (18 never appears)."""
    pred = np.where(train_ids == 255, rng.integers(0, 18, train_ids.shape), train_ids)
    noise = rng.random(train_ids.shape) < 0.3
    pred[noise] = rng.integers(0, 18, int(noise.sum()))
    return torch.from_numpy(pred.astype(np.int64))[None]


@pytest.fixture()
def samples(tmp_path):
    rng = np.random.default_rng(0)
    out = []
    for city, frame, shape in [('aachen', 19, (48, 64)), ('bremen', 7, (40, 80)),
                               ('bremen', 8, (32, 48))]:
        sample, train_ids = write_image_pair(tmp_path, city, frame, shape, rng)
        sample.pred_sem_seg = PixelData(data=predict(train_ids, rng))
        out.append(sample)
    return out


def test_official_evaluation_agrees_with_iou_metric(samples, tmp_path):
    ours = IoUMetric()
    ours.dataset_meta = CITYSCAPES_METAINFO
    official = CityscapesMetric()
    for sample in samples:  # batch of one, as in validation
        ours.process({}, [sample.to_dict()])
        official.process({}, [sample.to_dict()])
    pred_dir = official._work_dir
    ours_results, official_results = ours.evaluate(3), official.evaluate(3)
    assert official_results['mIoU'] == pytest.approx(ours_results['mIoU'], abs=1e-6)
    assert 20 < ours_results['mIoU'] < 95
    for name in CLASSES:
        a, b = ours_results[f'IoU.{name}'], official_results[f'IoU.{name}']
        assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, abs=1e-6), name
    assert math.isnan(official_results['IoU.bicycle'])  # absent from labels and predictions
    assert not os.path.exists(pred_dir)  # the temporary predictions are removed


def test_missing_label_ids_file_is_named(samples):
    path = samples[0].seg_map_path.replace('labelTrainIds', 'labelIds')
    os.remove(path)
    with pytest.raises(FileNotFoundError, match='_gtFine_labelIds.png'):
        CityscapesMetric().process({}, [samples[0].to_dict()])
