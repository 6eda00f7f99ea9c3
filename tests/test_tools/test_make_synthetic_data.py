"""Synthetic data: raw layouts, determinism, idempotence, and a measurable domain gap."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from tools.make_synthetic_data import DOMAINS, main, prepare_synthetic_data

TINY = dict(num_source=2, num_train=2, num_val=2, source_size=(64, 36), target_size=(64, 32))

# One file per domain that the real download (or its converter) holds, relative to the root.
EXPECTED_FILES = [
    'gta/images/00001.png',
    'gta/labels/00001.png',
    'gta/labels/00001_labelTrainIds.png',
    'gta/sample_class_stats.json',
    'gta/sample_class_stats_dict.json',
    'gta/samples_with_class.json',
    'synthia/RGB/0000000.png',
    'synthia/GT/LABELS/0000000.png',
    'synthia/GT/LABELS/0000000_labelTrainIds.png',
    'synthia/samples_with_class.json',
    'cityscapes/leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png',
    'cityscapes/gtFine/val/frankfurt/frankfurt_000000_000019_gtFine_polygons.json',
    'cityscapes/gtFine/val/frankfurt/frankfurt_000000_000019_gtFine_labelIds.png',
    'cityscapes/gtFine/val/frankfurt/frankfurt_000000_000019_gtFine_labelTrainIds.png',
    'cityscapes/samples_with_class.json',
    'cityscapes/val.txt',
    'acdc/rgb_anon/fog/val/GOPR0410/GOPR0410_frame_000000_rgb_anon.png',
    'acdc/gt/night/train/GOPR0401/GOPR0401_frame_000001_gt_labelTrainIds.png',
    'acdc/gt/night/train/GOPR0401/GOPR0401_frame_000001_gt_labelIds.png',
    'dark_zurich/rgb_anon/train/night/GOPR0351/GOPR0351_frame_000000_rgb_anon.png',
    'dark_zurich/gt/val/night/GOPR0356/GOPR0356_frame_000000_gt_labelTrainIds.png',
    'mapillary/training/images',
    'mapillary/validation/v1.2/labels',
    'mapillary/validation/labels',
    'bdd100k/images/10k/val',
    'bdd100k/labels/10k/val',
]


def files(root: Path) -> dict:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob('*')) if p.is_file()
    }


def test_default_set_has_the_raw_layouts(synthetic_data_root):
    for rel in EXPECTED_FILES:
        assert (synthetic_data_root / rel).exists(), rel
    for domain in DOMAINS:
        assert (synthetic_data_root / domain / '.complete').is_file()
    assert not list((synthetic_data_root / 'dark_zurich').glob('gt/train'))
    gta_label = Image.open(synthetic_data_root / 'gta' / 'labels' / '00001.png')
    assert gta_label.mode == 'P' and gta_label.size == (256, 144)
    polygons = json.loads((synthetic_data_root / EXPECTED_FILES[11]).read_text())
    assert (polygons['imgWidth'], polygons['imgHeight']) == (256, 128)
    assert {'road', 'sky', 'ego vehicle'} <= {obj['label'] for obj in polygons['objects']}


def test_every_class_occurs_in_the_source(synthetic_data_root):
    with_class = json.loads((synthetic_data_root / 'gta' / 'samples_with_class.json').read_text())
    assert sorted(map(int, with_class)) == list(range(19))
    # Each class is large (> 200 pixels, the synthetic configs' RCS min_pixels) somewhere.
    assert all(max(n for _, n in entries) > 200 for entries in with_class.values())


def test_deterministic_by_seed(tmp_path):
    a = files(prepare_synthetic_data(tmp_path / 'a', seed=3, **TINY))
    b = files(prepare_synthetic_data(tmp_path / 'b', seed=3, **TINY))
    c = files(prepare_synthetic_data(tmp_path / 'c', seed=4, **TINY, domains=['gta']))
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a)
    assert a['gta/images/00001.png'] != c['gta/images/00001.png']


def test_idempotent_marker(tmp_path):
    root = prepare_synthetic_data(tmp_path, seed=0, **TINY, domains=['gta', 'acdc'])
    image = root / 'gta' / 'images' / '00001.png'
    stamp = image.stat().st_mtime_ns
    prepare_synthetic_data(tmp_path, seed=0, **TINY, domains=['gta', 'acdc'])
    assert image.stat().st_mtime_ns == stamp  # reused
    prepare_synthetic_data(tmp_path, seed=0, **dict(TINY, num_source=3), domains=['gta'])
    assert len(list((root / 'gta' / 'images').glob('*.png'))) == 3  # rewritten
    with pytest.raises(ValueError, match='unknown synthetic domains'):
        prepare_synthetic_data(tmp_path, domains=['kitti'])


def test_main_writes_requested_sizes(tmp_path):
    main([
        '--out',
        str(tmp_path), '--seed', '1', '--num-source', '1', '--num-val', '1', '--num-train', '1',
        '--source-size', '48', '32', '--target-size', '40', '20', '--domains', 'gta', 'bdd100k'
    ])
    assert cv2.imread(str(tmp_path / 'gta' / 'images' / '00001.png')).shape == (32, 48, 3)
    (bdd, ) = (tmp_path / 'bdd100k' / 'images' / '10k' / 'val').glob('*.jpg')
    assert cv2.imread(str(bdd)).shape == (20, 40, 3)


def _pixels(images, label_of):
    x = np.concatenate([cv2.imread(str(p)).reshape(-1, 3) for p in images]).astype(np.float32)
    y = np.concatenate([np.array(Image.open(label_of(p))).ravel() for p in images])
    keep = y < 19
    return x[keep][::7], y[keep][::7]  # every 7th pixel keeps the test fast


def _nearest_mean_accuracy(means, x, y):
    return float((((x[:, None] - means[None])**2).sum(-1).argmin(1) == y).mean())


def test_source_model_loses_accuracy_on_other_domains(synthetic_data_root):
    """A per-pixel colour classifier fitted on GTA does much worse on every target."""
    root = synthetic_data_root
    gta = sorted((root / 'gta' / 'images').glob('*.png'))
    x, y = _pixels(gta, lambda p: root / 'gta' / 'labels' / f'{p.stem}_labelTrainIds.png')
    means = np.stack([x[y == c].mean(0) for c in range(19)])
    source_acc = _nearest_mean_accuracy(means, x, y)
    targets = {
        'cityscapes':
        (sorted(root.glob('cityscapes/leftImg8bit/val/*/*.png')), lambda p: str(p).replace(
            'leftImg8bit/', 'gtFine/').replace('_leftImg8bit.png', '_gtFine_labelTrainIds.png')),
        'acdc': (sorted(root.glob('acdc/rgb_anon/*/val/*/*.png')), lambda p: str(p).replace(
            'rgb_anon/', 'gt/').replace('_rgb_anon.png', '_gt_labelTrainIds.png')),
        'dark_zurich': (sorted(root.glob('dark_zurich/rgb_anon/val/*/*/*.png')), lambda p: str(
            p).replace('rgb_anon/', 'gt/').replace('_rgb_anon.png', '_gt_labelTrainIds.png')),
    }
    assert source_acc > 0.7
    for name, (images, label_of) in targets.items():
        xt, yt = _pixels(images, label_of)
        target_acc = _nearest_mean_accuracy(means, xt, yt)
        assert target_acc < source_acc - 0.3, name
        if name == 'acdc':  # four conditions: one mean colour per class cannot fit them all
            continue
        # ...while the classes stay separable in the target's own colours.
        own = np.stack(
            [xt[yt == c].mean(0) if (yt == c).any() else np.full(3, 1e6) for c in range(19)])
        assert _nearest_mean_accuracy(own, xt, yt) > target_acc + 0.1, name
