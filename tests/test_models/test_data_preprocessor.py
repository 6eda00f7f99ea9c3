"""SegDataPreProcessor: BGR->RGB, [-1, 1], padding of images and labels, target keys."""
import pytest
import torch
from mmengine.structures import PixelData

from mmseg.models import SegDataPreProcessor
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample


def make_preprocessor(**kwargs):
    cfg = dict(type='SegDataPreProcessor', mean=[127.5] * 3, std=[127.5] * 3, bgr_to_rgb=True,
               pad_val=0, seg_pad_val=255)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def sample_with_gt(height, width, value=3, path='x.png'):
    sample = SegDataSample(metainfo=dict(img_path=path, ori_shape=(height, width)))
    sample.gt_sem_seg = PixelData(data=torch.full((1, height, width), value, dtype=torch.int64))
    return sample


def bgr_image(height, width):
    img = torch.zeros(3, height, width, dtype=torch.uint8)
    img[0], img[1], img[2] = 0, 127, 255  # B, G, R
    return img


def test_bgr_to_rgb_and_normalisation():
    out = make_preprocessor()(dict(inputs=[bgr_image(4, 6)], data_samples=[sample_with_gt(4, 6)]))
    inputs = out['inputs']
    assert inputs.shape == (1, 3, 4, 6) and inputs.dtype == torch.float32
    # RGB order: R=255 -> 1, G=127 -> -0.5/127.5, B=0 -> -1.
    assert torch.allclose(inputs[0, :, 0, 0], torch.tensor([1.0, -0.5 / 127.5, -1.0]))


def test_training_pads_images_with_0_and_labels_with_255_to_size():
    samples = [sample_with_gt(5, 7), sample_with_gt(6, 4)]
    out = make_preprocessor(size=(8, 8))(
        dict(inputs=[bgr_image(5, 7), bgr_image(6, 4)], data_samples=samples), training=True)
    inputs, samples = out['inputs'], out['data_samples']
    assert inputs.shape == (2, 3, 8, 8)
    assert (inputs[0, :, 5:] == 0).all() and (inputs[0, :, :, 7:] == 0).all()
    assert (inputs[1, :, :, 4:] == 0).all()
    gt = samples[0].gt_sem_seg.data
    assert gt.shape == (1, 8, 8) and (gt[:, :5, :7] == 3).all()
    assert (gt[:, 5:] == 255).all() and (gt[:, :, 7:] == 255).all()
    assert samples[1].metainfo['img_shape'] == (6, 4)
    assert samples[1].metainfo['pad_shape'] == (8, 8)
    assert samples[1].metainfo['padding_size'] == [0, 4, 0, 2]


def test_size_divisor_in_training():
    out = make_preprocessor(size_divisor=16)(
        dict(inputs=[bgr_image(20, 33)], data_samples=[sample_with_gt(20, 33)]), training=True)
    assert out['inputs'].shape == (1, 3, 32, 48)
    assert out['data_samples'][0].gt_sem_seg.data.shape == (1, 32, 48)


def test_test_mode_pads_to_size_divisor_and_records_padding_only():
    sample = sample_with_gt(50, 70)
    out = make_preprocessor(size=(512, 512), test_cfg=dict(size_divisor=64))(
        dict(inputs=[bgr_image(50, 70)], data_samples=[sample]), training=False)
    assert out['inputs'].shape == (1, 3, 64, 128)  # the training `size` is not used
    meta = out['data_samples'][0].metainfo
    assert meta['padding_size'] == [0, 58, 0, 14] and meta['img_shape'] == (50, 70)
    assert out['data_samples'][0].gt_sem_seg.data.shape == (1, 50, 70)  # labels untouched


def test_target_keys_are_processed_like_the_source():
    target_sample = SegDataSample(metainfo=dict(img_path='t.png'))  # no target labels
    data = dict(inputs=[bgr_image(6, 6)], data_samples=[sample_with_gt(6, 6)],
                target_inputs=[bgr_image(5, 6)], target_data_samples=[target_sample])
    out = make_preprocessor(size=(8, 8))(data, training=True)
    assert out['target_inputs'].shape == (1, 3, 8, 8)
    assert torch.equal(out['target_inputs'][:, :, :5, :6], out['inputs'][:, :, :5, :6])
    assert out['target_data_samples'][0].metainfo['padding_size'] == [0, 2, 0, 3]


def test_stacked_tensor_input_and_no_normalisation():
    out = SegDataPreProcessor()(dict(inputs=torch.ones(2, 3, 4, 4, dtype=torch.uint8)))
    assert out['inputs'].shape == (2, 3, 4, 4) and (out['inputs'] == 1).all()
    assert out['data_samples'] is None


def test_bad_input_errors():
    with pytest.raises(KeyError, match='inputs'):
        make_preprocessor()(dict(images=[]))
    with pytest.raises(ValueError, match=r'\(3, H, W\)'):
        make_preprocessor()(dict(inputs=[torch.zeros(4, 4)]))
    with pytest.raises(ValueError, match='unknown test_cfg'):
        make_preprocessor(test_cfg=dict(size_divisr=64))
    with pytest.raises(ValueError, match='2 images but 1'):
        make_preprocessor()(dict(inputs=[bgr_image(4, 4)] * 2, data_samples=[sample_with_gt(4, 4)]))
