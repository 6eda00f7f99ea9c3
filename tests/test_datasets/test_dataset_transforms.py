"""Transforms: resize rule, crop with cat_max_ratio, flip, photometric ranges, packing, loading."""
import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from mmseg.datasets.transforms import (LoadAnnotations, LoadImageFromFile, PackSegInputs,
                                       PhotoMetricDistortion, RandomCrop, RandomFlip, Resize)


def results(h=8, w=10, label=None):
    img = np.arange(h * w * 3, dtype=np.uint8).reshape(h, w, 3)
    out = dict(img=img, img_shape=(h, w), ori_shape=(h, w), seg_fields=[])
    if label is not None:
        out['gt_seg_map'] = label
        out['seg_fields'] = ['gt_seg_map']
    return out


@pytest.mark.parametrize(
    'size,scale,expected',
    [
        ((1914, 1052), (1280, 720), (1280, 704)),  # GTA: factor min(1280/1914, 720/1052)
        ((2048, 1024), (1024, 512), (1024, 512)),  # Cityscapes test
        ((1920, 1080), (960, 540), (960, 540)),  # ACDC / Dark Zurich test
        ((256, 144), (1280, 720), (1280, 720)),
        ((1000, 2000), (1280, 720), (640, 1280)),  # portrait: long side bounded by 1280
    ])
def test_resize_keep_ratio_factor(size, scale, expected):
    w, h = size
    factor = min(max(scale) / max(w, h), min(scale) / min(w, h))
    assert expected == (int(w * factor + 0.5), int(h * factor + 0.5))
    r = Resize(scale)(dict(img=np.zeros((h, w, 3), np.uint8),
                           gt_seg_map=np.zeros((h, w), np.uint8),
                           seg_fields=['gt_seg_map']))
    assert r['img'].shape[:2] == expected[::-1] == r['gt_seg_map'].shape
    assert r['img_shape'] == expected[::-1]
    assert r['scale_factor'] == pytest.approx((expected[0] / w, expected[1] / h))


def test_resize_labels_nearest():
    label = np.array([[0, 255], [18, 5]], np.uint8)
    out = Resize((4, 4))(dict(img=np.zeros((2, 2, 3), np.uint8),
                              gt_seg_map=label,
                              seg_fields=['gt_seg_map']))
    assert set(np.unique(out['gt_seg_map'])) == {0, 5, 18, 255}
    assert (out['gt_seg_map'] == np.kron(label, np.ones((2, 2), np.uint8))).all()


def test_random_crop_size_and_consistency():
    label = np.arange(80, dtype=np.uint8).reshape(8, 10) % 19
    r = RandomCrop((4, 6))(results(label=label))
    y0, y1, x0, x1 = r['crop_bbox']
    assert r['img'].shape == (4, 6, 3) and r['gt_seg_map'].shape == (4, 6)
    assert (r['gt_seg_map'] == label[y0:y1, x0:x1]).all() and r['img_shape'] == (4, 6)
    small = RandomCrop((16, 16))(results(label=label))  # smaller image: kept whole
    assert small['img'].shape == (8, 10, 3)


class CountingCrop(RandomCrop):

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.draws = 0

    def _draw(self, shape):
        self.draws += 1
        return super()._draw(shape)


def test_cat_max_ratio_accepts_only_mixed_crops():
    # Left half all class 1, right column band mixed: acceptable crops must touch x >= 8.
    label = np.ones((8, 12), np.uint8)
    label[:, 8:] = np.array([2, 3, 255, 4])[None, :]
    redrawn = 0
    for seed in range(20):
        np.random.seed(seed)
        crop = CountingCrop((4, 6), cat_max_ratio=0.75)
        out = crop(results(8, 12, label))['gt_seg_map']
        labels, counts = np.unique(out, return_counts=True)
        counts = counts[labels != 255]  # ignore excluded from the ratio
        if crop.draws <= 10:
            assert len(counts) > 1 and counts.max() / counts.sum() < 0.75
        assert crop.draws <= 11
        redrawn += crop.draws > 1
    assert redrawn > 0  # the first draw was rejected at least once


def test_cat_max_ratio_keeps_last_draw_after_ten_redraws():
    label = np.full((8, 12), 7, np.uint8)  # one class everywhere: never acceptable
    crop = CountingCrop((4, 6), cat_max_ratio=0.75)
    out = crop(results(8, 12, label))
    assert crop.draws == 11 and out['gt_seg_map'].shape == (4, 6)


def test_random_flip():
    label = np.arange(80, dtype=np.uint8).reshape(8, 10)
    flipped = RandomFlip(prob=1.0)(results(label=label.copy()))
    assert flipped['flip'] and flipped['flip_direction'] == 'horizontal'
    assert (flipped['gt_seg_map'] == label[:, ::-1]).all()
    assert (flipped['img'] == results()['img'][:, ::-1]).all()
    kept = RandomFlip(prob=0.0)(results(label=label.copy()))
    assert not kept['flip'] and (kept['gt_seg_map'] == label).all()


def test_photometric_steps_stay_in_released_ranges():
    img = np.full((4, 4, 3), 128, np.uint8)
    t = PhotoMetricDistortion()
    np.random.seed(0)
    deltas, ratios = set(), set()
    for _ in range(200):
        b = t.brightness(img).astype(int) - 128
        deltas.add(int(b[0, 0, 0]))
        c = t.contrast(img).astype(float) / 128
        ratios.add(round(float(c[0, 0, 0]), 2))
    assert min(deltas) >= -32 and max(deltas) <= 32 and 0 in deltas and len(deltas) > 20
    assert min(ratios) >= 0.5 - 1e-6 and max(ratios) <= 1.5 + 1e-6 and 1.0 in ratios
    colour = np.zeros((1, 1, 3), np.uint8)
    colour[..., 2] = 200  # pure red (BGR)
    hues = set()
    for _ in range(200):
        hue = cv2.cvtColor(t.hue(colour), cv2.COLOR_BGR2HSV)[0, 0, 0]
        hues.add((int(hue) + 90) % 180 - 90)  # red has hue 0; shifts wrap around
    assert min(hues) >= -18 and max(hues) <= 17 and len(hues) > 20


class RecordingDistortion(PhotoMetricDistortion):
    """Records the order in which the four steps run."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def brightness(self, img):
        self.calls.append('brightness')
        return super().brightness(img)

    def contrast(self, img):
        self.calls.append('contrast')
        return super().contrast(img)

    def saturation(self, img):
        self.calls.append('saturation')
        return super().saturation(img)

    def hue(self, img):
        self.calls.append('hue')
        return super().hue(img)


def test_photometric_order_contrast_first_or_last():
    orders = set()
    np.random.seed(1)
    for _ in range(50):
        t = RecordingDistortion()
        t(dict(img=np.full((2, 2, 3), 100, np.uint8)))
        orders.add(tuple(t.calls))
    assert orders == {('brightness', 'contrast', 'saturation', 'hue'),
                      ('brightness', 'saturation', 'hue', 'contrast')}


def test_pack_seg_inputs():
    label = np.array([[0, 255], [18, 3]], np.uint8)
    r = results(2, 2, label)
    r.update(img_path='a.png',
             seg_map_path='b.png',
             scale_factor=(1.0, 1.0),
             flip=False,
             flip_direction=None)
    packed = PackSegInputs()(r)
    assert packed['inputs'].dtype == torch.uint8 and packed['inputs'].shape == (3, 2, 2)
    assert (packed['inputs'][2].numpy() == r['img'][..., 2]).all()  # channel order kept (BGR)
    gt = packed['data_samples'].gt_sem_seg.data
    assert gt.dtype == torch.int64 and gt.shape == (1, 2, 2) and gt[0, 0, 1] == 255
    meta = packed['data_samples'].metainfo
    assert meta['img_path'] == 'a.png' and meta['ori_shape'] == (2, 2) and meta['flip'] is False


def test_load_image_and_annotations(tmp_path):
    img = np.random.default_rng(0).integers(0, 255, (6, 5, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / 'x.png'), img)
    Image.fromarray(np.array([[0, 18], [255, 3]], np.uint8)).save(tmp_path / 'y.png')
    r = LoadImageFromFile()(dict(img_path=str(tmp_path / 'x.png')))
    assert (r['img'] == img).all() and r['ori_shape'] == (6, 5)
    r = LoadAnnotations()(dict(seg_map_path=str(tmp_path / 'y.png')))
    assert r['gt_seg_map'].tolist() == [[0, 18], [255, 3]] and r['seg_fields'] == ['gt_seg_map']


@pytest.mark.parametrize('content,error,match', [
    (None, OSError, 'does not exist'),
    (b'', OSError, 'empty, corrupt'),
    (b'\x89PNG\r\n\x1a\n broken', OSError, 'empty, corrupt'),
])
def test_unreadable_image_names_the_file(tmp_path, content, error, match):
    path = tmp_path / 'bad.png'
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(error, match=match) as err:
        LoadImageFromFile()(dict(img_path=str(path)))
    assert str(path) in str(err.value)


def test_bad_labels_name_the_file(tmp_path):
    Image.fromarray(np.array([[0, 19], [33, 255]], np.uint8)).save(tmp_path / 'raw.png')
    with pytest.raises(ValueError, match=r'raw\.png holds values \{19, 33\} outside'):
        LoadAnnotations()(dict(seg_map_path=str(tmp_path / 'raw.png')))
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / 'color.png')
    with pytest.raises(ValueError, match=r"color\.png has image mode 'RGB'"):
        LoadAnnotations()(dict(seg_map_path=str(tmp_path / 'color.png')))
    (tmp_path / 'trunc.png').write_bytes(b'\x89PNG\r\n\x1a\n')
    with pytest.raises(OSError, match=r'trunc\.png'):
        LoadAnnotations()(dict(seg_map_path=str(tmp_path / 'trunc.png')))
    with pytest.raises(FileNotFoundError, match=r'gone\.png does not exist'):
        LoadAnnotations()(dict(seg_map_path=str(tmp_path / 'gone.png')))
