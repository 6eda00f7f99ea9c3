"""Write synthetic scenes in the exact raw layouts of the real datasets.

One function per dataset; each writes the files the real download holds (images,
raw labels in that dataset's id space), so the converters and dataset classes run
on them unchanged. Every image has its own generator, seeded by (seed, domain,
split, index): the output depends on nothing else.
"""
import json
import zlib
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import cv2
import numpy as np
from cityscapesscripts.helpers.labels import labels as CS_LABELS
from cityscapesscripts.helpers.labels import name2label
from PIL import Image

from mmseg.utils import atomic_path, atomic_write_text

from .render import ID_TO_TRAIN_ID, STYLES, Style, random_style, rasterize, render
from .scene import make_scene

#: Image i features class i mod 19, so every class occurs large in some image.
FEATURES = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light',
            'traffic sign', 'vegetation', 'terrain', 'sky', 'person', 'rider', 'car', 'truck',
            'bus', 'train', 'motorcycle', 'bicycle')
DOMAIN_IDS = {
    'gta': 1,
    'synthia': 2,
    'cityscapes': 3,
    'acdc': 4,
    'dark_zurich': 5,
    'bdd100k': 6,
    'mapillary': 7
}
Size = Tuple[int, int]


def _table(mapping: Dict[str, int], default: int) -> np.ndarray:
    """Cityscapes label id -> another dataset's raw id, by label name."""
    table = np.full(256, default, dtype=np.uint16)
    for name, raw in mapping.items():
        table[name2label[name].id] = raw
    return table


# Raw ids of the other datasets for the names the scenes use (the inverse of the
# converters' tables; ignored names get an id the converter maps to 255).
MAPILLARY_FROM_CS = _table(
    {
        'road': 13,
        'sidewalk': 15,
        'building': 17,
        'wall': 6,
        'fence': 3,
        'pole': 45,
        'traffic light': 48,
        'traffic sign': 50,
        'vegetation': 30,
        'terrain': 29,
        'sky': 27,
        'person': 19,
        'rider': 20,
        'car': 55,
        'truck': 61,
        'bus': 54,
        'train': 58,
        'motorcycle': 57,
        'bicycle': 52,
        'ego vehicle': 64,
        'static': 51
    },
    default=65)
SYNTHIA_FROM_CS = _table(
    {
        'road': 3,
        'sidewalk': 4,
        'building': 2,
        'wall': 21,
        'fence': 5,
        'pole': 7,
        'traffic light': 15,
        'traffic sign': 9,
        'vegetation': 6,
        'terrain': 16,
        'sky': 1,
        'person': 10,
        'rider': 17,
        'car': 8,
        'truck': 18,
        'bus': 19,
        'train': 20,
        'motorcycle': 12,
        'bicycle': 11,
        'static': 13
    },
    default=0)
CS_PALETTE = np.zeros((256, 3), np.uint8)
for _label in CS_LABELS:
    if 0 <= _label.id < 256:
        CS_PALETTE[_label.id] = _label.color


class SceneSource:
    """Draws scenes for one domain.

    Args:
        seed: Global seed.
        domain: Domain name (part of every image's seed).
        size: (width, height).
        style: A fixed style, or a function of the image's generator.
        **scene_kwargs: Passed to :func:`make_scene`.
    """

    def __init__(self,
                 seed: int,
                 domain: str,
                 size: Size,
                 style: Optional[Style] = None,
                 style_fn: Optional[Callable[[np.random.Generator], Style]] = None,
                 **scene_kwargs) -> None:
        self.seed, self.domain, self.size = seed, domain, size
        self.style, self.style_fn, self.kwargs = style, style_fn, scene_kwargs

    def draw(self, split: int, index: int, style: Optional[Style] = None):
        """(BGR image, Cityscapes ids, scene) of image ``index`` of ``split``."""
        rng = np.random.default_rng([self.seed, DOMAIN_IDS[self.domain], split, index])
        scene = make_scene(rng, *self.size, feature=FEATURES[index % len(FEATURES)], **self.kwargs)
        ids, inst = rasterize(scene)
        style = style or self.style or self.style_fn(rng)
        return render(scene, ids, inst, style, rng), ids, scene


def write_image(path: Path, img: np.ndarray) -> None:
    params = [cv2.IMWRITE_JPEG_QUALITY, 92] if path.suffix == '.jpg' else []
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), img, params):
            raise OSError(f'could not write {path}')


def write_png(path: Path, array: np.ndarray, palette: Optional[np.ndarray] = None) -> None:
    """uint8 (H, W) -> mode L (mode P with ``palette``); (H, W, 3) -> RGB."""
    with atomic_path(path) as tmp:
        img = Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8))
        if palette is not None:
            img.putpalette(palette.ravel().tolist())  # an L image becomes mode P
        img.save(tmp)


def write_gt_trio(prefix: Path, ids: np.ndarray) -> None:
    """ACDC / Dark Zurich ground truth: *_gt_labelIds, *_gt_labelTrainIds, *_gt_labelColor."""
    write_png(prefix.with_name(prefix.name + '_gt_labelIds.png'), ids)
    write_png(prefix.with_name(prefix.name + '_gt_labelTrainIds.png'), ID_TO_TRAIN_ID[ids])
    write_png(prefix.with_name(prefix.name + '_gt_labelColor.png'), CS_PALETTE[ids])


def write_gta(root: Path, seed: int, num: int, size: Size) -> None:
    """images/00001.png and labels/00001.png (palette PNG of Cityscapes ids), as GTA5."""
    source = SceneSource(seed, 'gta', size, STYLES['gta'])
    for i in range(num):
        img, ids, _ = source.draw(0, i)
        write_image(root / 'images' / f'{i + 1:05d}.png', img)
        write_png(root / 'labels' / f'{i + 1:05d}.png', ids, CS_PALETTE)


def write_synthia(root: Path, seed: int, num: int, size: Size) -> None:
    """RGB/0000000.png and GT/LABELS/0000000.png (uint16, class id in the R channel)."""
    source = SceneSource(seed,
                         'synthia',
                         size,
                         STYLES['synthia'],
                         horizon=(0.25, 0.35),
                         substitute={
                             'terrain': 'vegetation',
                             'truck': 'car',
                             'train': 'bus'
                         })
    for i in range(num):
        img, ids, _ = source.draw(0, i)
        label = np.zeros(ids.shape + (3, ), np.uint16)
        label[..., 2] = SYNTHIA_FROM_CS[ids]  # OpenCV writes channel 2 as R
        write_image(root / 'RGB' / f'{i:07d}.png', img)
        write_image(root / 'GT' / 'LABELS' / f'{i:07d}.png', label)


def _polygons_json(scene, ids_shape) -> str:
    objects = [dict(label=name, polygon=[list(p) for p in poly]) for name, poly in scene.objects]
    return json.dumps(dict(imgHeight=ids_shape[0], imgWidth=ids_shape[1], objects=objects))


def write_cityscapes(root: Path, seed: int, counts: Dict[str, int], size: Size) -> None:
    """leftImg8bit/<split>/<city>/*_leftImg8bit.png; gtFine polygons json, labelIds (no test)."""
    cities = dict(train=('aachen', 'bochum', 'bremen'), val=('frankfurt', 'lindau', 'munster'),
                  test=('berlin', 'bielefeld', 'bonn'))
    source = SceneSource(seed, 'cityscapes', size, STYLES['cityscapes'], ego=True)
    for split_id, (split, num) in enumerate(counts.items()):
        for i in range(num):
            img, ids, scene = source.draw(split_id, i)
            city = cities[split][i % len(cities[split])]
            name = f'{city}_{i:06d}_000019'
            write_image(root / 'leftImg8bit' / split / city / f'{name}_leftImg8bit.png', img)
            if split == 'test':  # the test split's labels are withheld
                continue
            gt = root / 'gtFine' / split / city
            atomic_write_text(gt / f'{name}_gtFine_polygons.json', _polygons_json(scene, ids.shape))
            write_png(gt / f'{name}_gtFine_labelIds.png', ids)
            write_png(gt / f'{name}_gtFine_color.png', CS_PALETTE[ids])


def write_acdc(root: Path, seed: int, counts: Dict[str, int], size: Size) -> None:
    """rgb_anon/<condition>/<split>/<seq>/*_rgb_anon.png and gt/... (train ids; none for test)."""
    source = SceneSource(seed, 'acdc', size)
    for split_id, (split, num) in enumerate(counts.items()):
        for i in range(num):
            cond = ('fog', 'night', 'rain', 'snow')[i % 4]
            img, ids, _ = source.draw(split_id, i, STYLES[cond])
            seq = f'GOPR0{400 + 10 * split_id + i % 4}'
            name = f'{seq}_frame_{i:06d}'
            write_image(root / 'rgb_anon' / cond / split / seq / f'{name}_rgb_anon.png', img)
            if split != 'test':  # the test split's labels are withheld
                write_gt_trio(root / 'gt' / cond / split / seq / name, ids)


def write_dark_zurich(root: Path, seed: int, counts: Dict[str, int], size: Size) -> None:
    """rgb_anon/{train,val,test}/night/<seq>/*_rgb_anon.png; gt only for val."""
    source = SceneSource(seed, 'dark_zurich', size, STYLES['night'])
    sequences = dict(train='GOPR0351', val='GOPR0356', test='GOPR0364')
    for split_id, (split, num) in enumerate(counts.items()):
        seq = sequences[split]
        for i in range(num):
            img, ids, _ = source.draw(split_id, i)
            name = f'{seq}_frame_{i:06d}'
            write_image(root / 'rgb_anon' / split / 'night' / seq / f'{name}_rgb_anon.png', img)
            if split == 'val':
                write_gt_trio(root / 'gt' / split / 'night' / seq / name, ids)


def write_bdd100k(root: Path, seed: int, counts: Dict[str, int], size: Size) -> None:
    """images/10k/<split>/<id>.jpg and labels/10k/<split>/<id>_train_id.png."""
    source = SceneSource(seed, 'bdd100k', size, STYLES['bdd100k'], ego=True)
    for split_id, (split, num) in enumerate(counts.items()):
        for i in range(num):
            img, ids, _ = source.draw(split_id, i)
            name = f'{zlib.crc32(f"{seed}-{split}".encode()):08x}-{i:08x}'
            write_image(root / 'images' / '10k' / split / f'{name}.jpg', img)
            write_png(root / 'labels' / '10k' / split / f'{name}_train_id.png', ID_TO_TRAIN_ID[ids])


def write_mapillary(root: Path, seed: int, counts: Dict[str, int], size: Size) -> None:
    """<split>/images/<id>.jpg and <split>/v1.2/labels/<id>.png (v1.2 ids), random cameras."""
    source = SceneSource(seed, 'mapillary', size, style_fn=random_style)
    for split_id, (split, num) in enumerate(counts.items()):
        for i in range(num):
            img, ids, _ = source.draw(split_id, i)
            name = f'{zlib.crc32(f"{seed}-{split}-{i}".encode()):08x}{i:014d}'
            write_image(root / split / 'images' / f'{name}.jpg', img)
            write_png(root / split / 'v1.2' / 'labels' / f'{name}.png',
                      MAPILLARY_FROM_CS[ids].astype(np.uint8), CS_PALETTE)
