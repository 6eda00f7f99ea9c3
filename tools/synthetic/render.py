"""Rasterise scenes to label maps and render them in a per-domain visual style.

Every class has a characteristic colour and texture (learnable from colour, texture
and position); a domain changes saturation, brightness, tint, texture strength, blur
and noise, and may add weather or night effects, so a model trained on the clean,
saturated source loses accuracy on the other domains.
"""
from dataclasses import dataclass, replace
from typing import Tuple

import cv2
import numpy as np
from cityscapesscripts.helpers.labels import labels as CS_LABELS
from cityscapesscripts.helpers.labels import name2label
from PIL import Image, ImageDraw

from .scene import Scene

NUM_IDS = 34  # Cityscapes label ids 0..33
#: Cityscapes label id -> train id (255 = ignore), from cityscapesscripts.
ID_TO_TRAIN_ID = np.full(256, 255, dtype=np.uint8)
for _label in CS_LABELS:
    if 0 <= _label.id < NUM_IDS and 0 <= _label.trainId < 19:
        ID_TO_TRAIN_ID[_label.id] = _label.trainId

# Natural colour (RGB) and (fine, coarse) texture amplitude of each train id.
_CLASS_LOOK = [((110, 100, 115), 0.05, 0.06), ((175, 150, 160), 0.04, 0.05),
               ((125, 100, 85), 0.06, 0.12), ((140, 140, 165), 0.04, 0.08),
               ((170, 140, 105), 0.05, 0.05), ((130, 135, 130), 0.02, 0.02),
               ((70, 60, 30), 0.02, 0.02), ((225, 200, 35), 0.02, 0.02),
               ((60, 120, 40), 0.25, 0.20), ((150, 175, 85), 0.12, 0.10),
               ((140, 180, 230), 0.01, 0.05), ((195, 50, 75), 0.05, 0.05),
               ((225, 95, 30), 0.05, 0.05),
               ((40, 60, 160), 0.03, 0.04), ((70, 100, 105), 0.04, 0.05),
               ((30, 140, 125), 0.03, 0.05), ((160, 40, 40), 0.03, 0.05),
               ((115, 45, 155), 0.04, 0.04), ((130, 25, 60), 0.04, 0.04)]
COLOR = np.zeros((256, 3), np.float32)
FINE = np.zeros(256, np.float32)
COARSE = np.zeros(256, np.float32)
COLOR[:NUM_IDS] = (90, 85, 80)  # ignored stuff ('static', 'ground', ...)
COLOR[name2label['ego vehicle'].id] = (35, 35, 40)
for _id in range(NUM_IDS):
    if ID_TO_TRAIN_ID[_id] < 19:
        COLOR[_id], FINE[_id], COARSE[_id] = _CLASS_LOOK[ID_TO_TRAIN_ID[_id]]
_ID = {
    name: name2label[name].id
    for name in ('building', 'fence', 'sky', 'road', 'sidewalk', 'terrain', 'vegetation')
}


@dataclass(frozen=True)
class Style:
    """How a domain looks. ``effect`` is '', 'fog', 'rain', 'snow' or 'night'."""
    saturation: float = 1.0
    brightness: float = 1.0
    texture: float = 1.0
    blur: float = 0.0
    noise: float = 2.0
    tint: Tuple[float, float, float] = (1.0, 1.0, 1.0)
    instance_jitter: float = 0.12
    effect: str = ''


REAL = Style(saturation=0.6,
             brightness=0.92,
             texture=1.4,
             blur=0.7,
             noise=4.0,
             tint=(1.0, 1.0, 0.95))
STYLES = {
    'gta':
    Style(saturation=1.7, brightness=1.08, texture=0.4, noise=1.5),
    'synthia':
    Style(saturation=1.5, texture=0.5, noise=1.5, tint=(0.92, 1.0, 1.12)),
    'cityscapes':
    REAL,
    'bdd100k':
    replace(REAL, saturation=0.75, brightness=0.9, blur=1.0, noise=5.0, tint=(1.08, 1.0, 0.86)),
    'fog':
    replace(REAL, effect='fog'),
    'rain':
    replace(REAL, effect='rain', blur=1.0),
    'snow':
    replace(REAL, effect='snow'),
    'night':
    replace(REAL, effect='night', noise=6.0),
}


def random_style(rng: np.random.Generator) -> Style:
    """A real-looking style with a random camera (Mapillary: many devices)."""
    return replace(REAL,
                   saturation=rng.uniform(0.5, 1.0),
                   brightness=rng.uniform(0.75, 1.2),
                   tint=tuple(rng.uniform(0.88, 1.12, 3)),
                   blur=rng.uniform(0.3, 1.0),
                   noise=rng.uniform(2.0, 6.0))


def rasterize(scene: Scene) -> Tuple[np.ndarray, np.ndarray]:
    """Cityscapes label ids (uint8) and instance indices (int32, 1-based) of a scene.

    Drawn exactly as ``json2labelImg`` draws the polygons (PIL, fill only, in order;
    background 'unlabeled').
    """
    size = (scene.width, scene.height)
    ids, inst = Image.new('L', size, 0), Image.new('I', size, 0)
    draw_ids, draw_inst = ImageDraw.Draw(ids), ImageDraw.Draw(inst)
    for index, (name, polygon) in enumerate(scene.objects, start=1):
        draw_ids.polygon(polygon, fill=name2label[name].id)
        draw_inst.polygon(polygon, fill=index)
    return np.array(ids), np.array(inst, dtype=np.int32)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    low = rng.standard_normal((h // cell + 2, w // cell + 2)).astype(np.float32)
    return cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)


def _base(ids: np.ndarray, inst: np.ndarray, style: Style, rng: np.random.Generator,
          horizon: int) -> np.ndarray:
    """Class colours with per-instance jitter, textures and simple patterns (RGB float)."""
    h, w = ids.shape
    img = COLOR[ids].copy()
    jitter = rng.normal(1.0, style.instance_jitter, inst.max() + 1).clip(0.6, 1.4)
    fine = rng.standard_normal((h, w)).astype(np.float32)
    shade = jitter[inst] * (1 + style.texture *
                            (FINE[ids] * fine + COARSE[ids] * _smooth_noise(rng, h, w, 8)))
    yy, xx = np.mgrid[0:h, 0:w]
    windows = (ids == _ID['building']) & ((xx // 5) % 3 == 0) & ((yy // 6) % 2 == 0)
    shade[windows] *= 0.6
    shade[(ids == _ID['fence']) & (xx % 4 < 2)] *= 0.7
    sky = ids == _ID['sky']
    shade[sky] *= (0.8 + 0.35 * yy[sky] / max(horizon, 1))
    return img * shade[..., None]


def _fog(img, scene, ids, rng):
    h, horizon = img.shape[0], scene.horizon
    depth = np.clip((np.arange(h) - horizon) / max(h - horizon, 1), 0, 1)
    t = (0.3 + 0.7 * depth**0.7)[:, None, None]
    return img * t + np.float32([190, 192, 198]) * (1 - t)


def _rain(img, scene, ids, rng):
    h, w = img.shape[:2]
    img = img * 0.6 + np.float32([60, 70, 80]) * 0.25
    streaks = np.zeros((h, w), np.float32)
    for _ in range(h * w // 300):
        x, y, n = int(rng.integers(w)), int(rng.integers(h)), int(rng.integers(6, 14))
        cv2.line(streaks, (x, y), (x + n // 4, y + n), 1.0, 1)
    return img * (1 - 0.35 * streaks[..., None]) + 200 * 0.35 * streaks[..., None]


def _snow(img, scene, ids, rng):
    h, w = img.shape[:2]
    ground = np.isin(ids, [_ID[n] for n in ('road', 'sidewalk', 'terrain', 'vegetation')])
    cover = (0.55 + 0.15 * _smooth_noise(rng, h, w, 6)).clip(0, 1) * ground
    img = img * (1 - cover[..., None]) + np.float32([235, 235, 240]) * cover[..., None]
    flakes = (rng.random((h, w)) < 0.02).astype(np.float32)
    flakes = cv2.GaussianBlur(flakes, (3, 3), 0.6)[..., None] * 2.0
    return img * (1 - flakes.clip(0, 1)) + 250 * flakes.clip(0, 1)


def _night(img, scene, ids, rng):
    h, w = img.shape[:2]
    img = img * 0.22 + np.float32([5, 8, 18])
    img[ids == _ID['sky']] = (10, 12, 25)
    glow = np.zeros((h, w), np.float32)
    for x, y, r in scene.lights:
        cv2.circle(glow, (int(x), int(y)), max(1, int(r)), 1.0, -1)
    halo = cv2.GaussianBlur(glow, (0, 0), max(2.0, h / 40))
    light = (0.9 * glow + 2.5 * halo)[..., None]
    return img + light * np.float32([255, 210, 140])


EFFECTS = {'fog': _fog, 'rain': _rain, 'snow': _snow, 'night': _night}


def render(scene: Scene, ids: np.ndarray, inst: np.ndarray, style: Style,
           rng: np.random.Generator) -> np.ndarray:
    """Render a rasterised scene in ``style``; returns a BGR uint8 image."""
    img = _base(ids, inst, style, rng, scene.horizon)
    grey = img.mean(axis=-1, keepdims=True)
    img = (grey + (img - grey) * style.saturation) * style.brightness * np.float32(style.tint)
    if style.effect:
        img = EFFECTS[style.effect](img, scene, ids, rng)
    if style.blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), style.blur)
    img = img + rng.normal(0, style.noise, img.shape).astype(np.float32)
    return cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
