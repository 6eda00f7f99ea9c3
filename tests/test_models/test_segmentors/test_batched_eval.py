"""Batched evaluation with the tiny DIFF model on synthetic data: the batch changes nothing.

Per-image seeded noise makes a batch of 4 give each image the prediction it gets alone;
images of different sizes in one batch are evaluated without each other's padding and
cropped back to their own ``ori_shape``; sliding windows evaluated several per backbone call
equal one window at a time.
"""
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

import mmseg.datasets  # noqa: F401  (registers the datasets and transforms)
import mmseg.models  # noqa: F401  (registers the models)
from mmseg.registry import DATASETS, MODELS
from tests.test_models.diff_merged_helpers import assert_close_to_magnitude

BASE_MODEL = 'configs/_base_/models/daformer_sepaspp_diff.py'
VAL_SETS = 'configs/_base_/datasets/synthetic_val_domains.py'
# Narrow trainable parts and a 3-step inversion with one stochastic update (t = 14).
OVERRIDES = dict(projection_channels=[64, 128, 128], stride4_channels=32,
                 timesteps=[40, 14, 4], saved_steps=[2, 1])


@pytest.fixture(scope='module')
def model(repo_root, tiny_sd_dir):
    cfg = copy.deepcopy(Config.fromfile(str(repo_root / BASE_MODEL)).model)
    cfg.backbone.overrides = dict(model_id=str(tiny_sd_dir), **OVERRIDES)
    cfg.decode_head.update(in_channels=[32, 64, 128, 128], channels=64,
                           decoder_params=dict(embed_dims=64,
                                               fusion_cfg=dict(dilations=(1, 6, 12, 18),
                                                               sep=True)))
    torch.manual_seed(0)
    return MODELS.build(cfg).eval()


def cityscapes_val(repo_root, synthetic_data_root, scale=(256, 128)):
    """The synthetic Cityscapes val set (256x128 images), resized to ``scale`` (W, H)."""
    cfg = copy.deepcopy(Config.fromfile(str(repo_root / VAL_SETS)).synthetic_cityscapes_val)
    cfg.data_root = str(synthetic_data_root / 'cityscapes')
    cfg.pipeline[1].scale = scale
    return DATASETS.build(cfg)


def predict(model, items):
    """seg_logits and pred_sem_seg of ``items`` evaluated as one batch."""
    with torch.no_grad():
        data = model.data_preprocessor(pseudo_collate(copy.deepcopy(items)), False)
        samples = model.predict(data['inputs'], data['data_samples'])
    return [(s.seg_logits.data, s.pred_sem_seg.data) for s in samples]


def assert_same(batched, alone):
    assert len(batched) == len(alone)
    for (logits, pred), (ref_logits, ref_pred) in zip(batched, alone):
        assert logits.shape == ref_logits.shape and pred.shape == ref_pred.shape
        # A batch of 4 vs one image rounds differently (CPU/thread-dependent): 1e-4 of scale.
        assert_close_to_magnitude(logits, ref_logits, 'seg_logits', relative=1e-4)
        assert (pred == ref_pred).float().mean() > 0.999


def test_batch_of_four_equals_one_at_a_time(model, repo_root, synthetic_data_root):
    dataset = cityscapes_val(repo_root, synthetic_data_root)
    items = [dataset[i] for i in range(4)]
    batched = predict(model, items)
    alone = [predict(model, [item])[0] for item in items]
    assert_same(batched, alone)
    assert batched[0][1].shape == (1, 128, 256)
    # The seeded noise is per image: two different images do not share predictions.
    assert not torch.equal(batched[0][0], batched[1][0])


def test_images_of_different_sizes_in_one_batch(model, repo_root, synthetic_data_root):
    # 256x128 and 192x96: the preprocessor pads the batch to 256x128; at batch 1 the
    # small image is padded to 192x128 (multiples of 64) instead. Grouping by size keeps that.
    large = cityscapes_val(repo_root, synthetic_data_root)
    small = cityscapes_val(repo_root, synthetic_data_root, scale=(192, 96))
    items = [large[0], small[1], large[2], small[3]]
    batched = predict(model, items)
    alone = [predict(model, [item])[0] for item in items]
    assert_same(batched, alone)
    # Cropped back to each image's ori_shape (the label's full resolution).
    for (logits, pred), item in zip(batched, items):
        assert pred.shape[1:] == item['data_samples'].ori_shape
        assert logits.shape[1:] == item['data_samples'].ori_shape


def test_slide_windows_in_batches_equal_one_window_at_a_time(model, repo_root,
                                                             synthetic_data_root):
    dataset = cityscapes_val(repo_root, synthetic_data_root)
    items = [dataset[0], dataset[1]]
    results = {}
    original = dict(model.test_cfg)
    try:
        # 128x256 in 64x128 windows every 32x64: 3 x 3 = 9 windows per image.
        for window_batch in (1, 4, 9):
            model.test_cfg.update(mode='slide', crop_size=(64, 128), stride=(32, 64),
                                  window_batch=window_batch)
            results[window_batch] = predict(model, items)
    finally:
        model.test_cfg.clear()
        model.test_cfg.update(original)
    assert_same(results[4], results[1])
    assert_same(results[9], results[1])
    # The last run evaluated all 9 windows of both images in each UNet call.
    assert set(model.backbone.last_usage.rows) == {18}


def test_window_batch_must_be_positive():
    from mmseg.models.segmentors.encoder_decoder import EncoderDecoder
    with pytest.raises(ValueError, match='window_batch must be a positive integer'):
        EncoderDecoder._checked_test_cfg(dict(mode='slide', crop_size=(64, 64),
                                              stride=(32, 32), window_batch=0))
