"""Procedural street scenes as ordered polygons with Cityscapes label names.

A scene is a road vanishing at the horizon, sidewalks, building facades or
nature (terrain and trees) on each side, walls and fences, poles with traffic
lights and signs, vehicles, people and riders, drawn far to near. Sizes follow
a pinhole camera one "camera height" above the ground: an object standing on
image row ``y`` is ``(y - horizon) * size`` pixels tall, so near objects are big.
Polygons are integer lists, drawn in order (later ones occlude earlier ones) as
cityscapesscripts' ``json2labelImg`` draws them.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

Point = Tuple[int, int]
Polygon = List[Point]

THINGS = ('person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle')


@dataclass
class Scene:
    """Polygons (label name, points) in draw order, and light sources for night scenes."""
    width: int
    height: int
    horizon: int
    objects: List[Tuple[str, Polygon]] = field(default_factory=list)
    lights: List[Tuple[float, float, float]] = field(default_factory=list)  # x, y, radius


def _poly(points) -> Polygon:
    return [(int(round(x)), int(round(y))) for x, y in points]


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 10) -> Polygon:
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return _poly(zip(cx + rx * np.cos(angles), cy + ry * np.sin(angles)))


def _rect(x0: float, y0: float, x1: float, y1: float) -> Polygon:
    return _poly([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])


class SceneBuilder:
    """Builds one random scene.

    Args:
        rng: The image's random generator (the only source of randomness).
        width, height: Image size.
        horizon: Range of the horizon row as a fraction of the height.
        substitute: Label names replaced by others (e.g. SYNTHIA has no terrain).
        ego: Add the ego-vehicle hood at the bottom (an ignored label).
    """

    def __init__(self,
                 rng: np.random.Generator,
                 width: int,
                 height: int,
                 horizon: Tuple[float, float] = (0.36, 0.48),
                 substitute: Optional[Dict[str, str]] = None,
                 ego: bool = False) -> None:
        self.rng, self.w, self.h = rng, width, height
        self.yh = int(height * rng.uniform(*horizon))
        self.xv = width * rng.uniform(0.4, 0.6)
        self.sub = substitute or {}
        self.ego = ego
        self.scene = Scene(width, height, self.yh)
        self._dynamic: List[Tuple[float, List[Tuple[str, Polygon]]]] = []
        # Road and sidewalk edges at the bottom row; sidewalks always leave the image sideways.
        half = width * rng.uniform(0.28, 0.42)
        self.road_b = (self.xv - half, self.xv + half * rng.uniform(0.9, 1.1))
        self.walk_b = (min(self.road_b[0] - width * rng.uniform(0.12, 0.3), -0.06 * width),
                       max(self.road_b[1] + width * rng.uniform(0.12, 0.3), 1.06 * width))

    # geometry ------------------------------------------------------------------------------
    def unit(self, t: float) -> float:
        """Pixels per camera height at depth parameter t (0 = horizon, 1 = bottom row)."""
        return (self.h - self.yh) * t

    def along(self, x_bottom: float, t: float) -> Tuple[float, float]:
        """Point at depth t on the ground line from the vanishing point to ``x_bottom``."""
        return self.xv + (x_bottom - self.xv) * t, self.yh + (self.h - self.yh) * t

    def add(self, name: str, polygon: Polygon) -> None:
        self.scene.objects.append((self.sub.get(name, name), polygon))

    def add_dynamic(self, t: float, parts: List[Tuple[str, Polygon]]) -> None:
        self._dynamic.append((t, [(self.sub.get(n, n), p) for n, p in parts]))

    # static layers -------------------------------------------------------------------------
    def ground(self) -> None:
        w, h, yh = self.w, self.h, self.yh
        self.add('sky', _rect(0, 0, w, yh + 1))
        self.add('terrain', _rect(0, yh, w, h))
        self.add(
            'road',
            _poly([(self.xv - 1, yh), (self.xv + 1, yh), (self.road_b[1], h), (self.road_b[0], h)]))
        for outer, inner in ((self.walk_b[0], self.road_b[0]), (self.walk_b[1], self.road_b[1])):
            self.add('sidewalk', _poly([(self.xv, yh), (outer, h), (inner, h)]))

    def _band(self, side: int, ta: float, tb: float, ratio: float) -> Polygon:
        """A vertical band standing on the sidewalk's outer line between depths ta and tb."""
        (xa, ya), (xb, yb) = self.along(self.walk_b[side], ta), self.along(self.walk_b[side], tb)
        return _poly([(xa, ya), (xb, yb), (xb, yb - ratio * self.unit(tb)),
                      (xa, ya - ratio * self.unit(ta))])

    def facade(self, side: int) -> None:
        cuts = np.sort(self.rng.uniform(0.08, 0.9, size=self.rng.integers(1, 4)))
        edges = [0.02, *cuts, 1.0]
        for ta, tb in zip(edges[:-1], edges[1:]):
            self.add('building', self._band(side, ta, tb, self.rng.uniform(2.5, 9.0)))

    def nature(self, side: int) -> None:
        if self.rng.random() < 0.5:
            self.add('vegetation', self._band(side, 0.02, 1.0, self.rng.uniform(0.5, 1.2)))
        for t in np.sort(self.rng.uniform(0.05, 0.7, size=self.rng.integers(2, 5))):
            x, y = self.along(self.walk_b[side] + (-1 if side == 0 else 1) * 0.15 * self.w, t)
            u = self.unit(t)
            self.add('vegetation', _rect(x - 0.06 * u, y - 2.0 * u, x + 0.06 * u, y))
            self.add(
                'vegetation',
                _ellipse(x,
                         y - 2.6 * u,
                         self.rng.uniform(0.8, 1.4) * u,
                         self.rng.uniform(0.8, 1.2) * u,
                         n=9))

    def barrier(self, side: int, name: str, big: bool = False) -> None:
        ta = self.rng.uniform(0.05, 0.3) if not big else 0.2
        tb = self.rng.uniform(ta + 0.2, 1.0) if not big else 1.0
        ratio = self.rng.uniform(0.5, 0.9) if name == 'fence' else self.rng.uniform(0.4, 1.2)
        self.add(name, self._band(side, ta, tb, ratio))

    # dynamic objects (sorted far to near before drawing) -----------------------------------
    def road_x(self, t: float, frac: float) -> float:
        left, right = self.along(self.road_b[0], t)[0], self.along(self.road_b[1], t)[0]
        return left + frac * (right - left)

    def walk_x(self, side: int, t: float, frac: float) -> float:
        outer = self.along(self.walk_b[side], t)[0]
        inner = self.along(self.road_b[side], t)[0]
        return inner + frac * (outer - inner)

    def pole(self, t: float, side: int, head: str) -> None:
        u = self.unit(t)
        x, y = self.walk_x(side, t, 0.12), self.yh + (self.h - self.yh) * t
        pw, ph = max(2.0, 0.1 * u), self.rng.uniform(3.2, 4.5) * u
        parts = [('pole', _rect(x - pw / 2, y - ph, x + pw / 2, y))]
        toward = 1 if side == 0 else -1  # heads hang over the road
        if head == 'traffic light':
            bw, bh = max(5.0, 0.5 * u), max(9.0, 1.1 * u)
            x0 = x + toward * pw / 2 - (bw if toward < 0 else 0)
            parts.append(('traffic light', _rect(x0, y - ph, x0 + bw, y - ph + bh)))
            self.scene.lights.append((x0 + bw / 2, y - ph + bh * 0.25, max(2.0, 0.25 * u)))
        elif head == 'traffic sign':
            s, cy = max(7.0, 0.75 * u), y - 0.8 * ph
            shape = self.rng.integers(3)
            if shape == 0:
                sign = _poly([(x - s / 2, cy - s / 2), (x + s / 2, cy - s / 2), (x, cy + s / 2)])
            elif shape == 1:
                sign = _ellipse(x, cy, s / 2, s / 2, n=8)
            else:
                sign = _rect(x - s / 2, cy - s / 3, x + s / 2, cy + s / 3)
            parts.append(('traffic sign', sign))
        else:  # street lamp: a light source for night scenes
            self.scene.lights.append((x, y - ph, max(2.0, 0.35 * u)))
        self.add_dynamic(t, parts)

    def vehicle(self, t: float, name: str) -> None:
        u, y = self.unit(t), self.yh + (self.h - self.yh) * t
        x = self.road_x(t, self.rng.uniform(0.2, 0.8))
        wid, hei = {
            'car': (1.25, 0.95),
            'truck': (1.55, 2.0),
            'bus': (1.65, 2.1),
            'train': (1.85, 2.3)
        }[name]
        w, h = wid * u * self.rng.uniform(0.9, 1.1), hei * u * self.rng.uniform(0.9, 1.1)
        if name == 'car':
            parts = [
                _rect(x - w / 2, y - 0.55 * h, x + w / 2, y),
                _poly([(x - 0.42 * w, y - 0.55 * h), (x + 0.42 * w, y - 0.55 * h),
                       (x + 0.3 * w, y - h), (x - 0.3 * w, y - h)])
            ]
        elif name == 'truck':
            parts = [
                _rect(x - w / 2, y - h, x + w / 2, y - 0.1 * h),
                _rect(x - 0.4 * w, y - 0.2 * h, x + 0.4 * w, y)
            ]
        else:
            parts = [
                _poly([(x - w / 2, y), (x + w / 2, y), (x + w / 2, y - 0.92 * h),
                       (x + 0.4 * w, y - h), (x - 0.4 * w, y - h), (x - w / 2, y - 0.92 * h)])
            ]
        for dx in (-0.38 * w, 0.38 * w):  # rear lights
            self.scene.lights.append((x + dx, y - 0.4 * h, max(1.5, 0.08 * u)))
        self.add_dynamic(t, [(name, p) for p in parts])

    def person_parts(self, x: float, y: float, u: float, name: str) -> List[Tuple[str, Polygon]]:
        """A standing figure of height ~1.15 camera heights with feet at (x, y)."""
        h = 1.15 * u * self.rng.uniform(0.9, 1.1)
        w = max(2.0, 0.32 * u)
        return [(name,
                 _poly([(x - w * 0.35, y), (x - w * 0.05, y), (x - w * 0.05, y - 0.45 * h),
                        (x + w * 0.05, y - 0.45 * h), (x + w * 0.05, y), (x + w * 0.35, y),
                        (x + w * 0.2, y - 0.5 * h), (x + w / 2, y - 0.82 * h),
                        (x - w / 2, y - 0.82 * h), (x - w * 0.2, y - 0.5 * h)])),
                (name, _ellipse(x, y - 0.9 * h, max(1.0, 0.11 * h), max(1.0, 0.1 * h), n=8))]

    def person(self, t: float) -> None:
        side = int(self.rng.integers(2))
        x, y = self.walk_x(side, t, self.rng.uniform(0.25, 0.9)), self.along(0, t)[1]
        self.add_dynamic(t, self.person_parts(x, y, self.unit(t), 'person'))

    def two_wheeler(self, t: float, name: str, ridden: bool = True) -> None:
        u, y = self.unit(t), self.along(0, t)[1]
        x = self.road_x(t, self.rng.uniform(0.1, 0.9))
        length, r = (1.3 * u, 0.22 * u) if name == 'motorcycle' else (1.1 * u, 0.25 * u)
        parts = [(name, _ellipse(x - length / 2 + r, y - r, r, r)),
                 (name, _ellipse(x + length / 2 - r, y - r, r, r))]
        if name == 'motorcycle':
            parts.append((name, _rect(x - 0.35 * length, y - 2.3 * r, x + 0.4 * length, y - r)))
        else:
            parts.append((name,
                          _poly([(x - length / 2 + r, y - r), (x, y - 2.6 * r),
                                 (x + length / 2 - r, y - r), (x, y - 1.2 * r)])))
        if ridden:
            parts += self.person_parts(x, y - 1.6 * r, u * 0.85, 'rider')
        self.add_dynamic(t, parts)

    def clutter(self, t: float) -> None:
        """A bin on the sidewalk: Cityscapes 'static', an ignored label."""
        u, y = self.unit(t), self.along(0, t)[1]
        x = self.walk_x(int(self.rng.integers(2)), t, 0.7)
        self.add_dynamic(t, [('static', _rect(x - 0.2 * u, y - 0.5 * u, x + 0.2 * u, y))])

    # assembly ------------------------------------------------------------------------------
    def sides(self, feature: Optional[str]) -> None:
        """Facades or nature on both sides, with walls and fences."""
        rng = self.rng
        nature_side = int(rng.integers(2)) if feature in ('vegetation', 'terrain') else -1
        for side in (0, 1):
            if side == nature_side or rng.random() > 0.65:
                self.nature(side)
            else:
                self.facade(side)
            for name in ('wall', 'fence'):
                if feature == name and side == 0:
                    self.barrier(side, name, big=True)
                elif rng.random() < 0.25:
                    self.barrier(side, name)

    def traffic(self, feature: Optional[str]) -> None:
        """Poles, vehicles, people and riders; the featured class gets a near instance."""
        rng = self.rng
        near = rng.uniform(0.5, 0.8)
        heads = ('traffic light', 'traffic sign', 'lamp')
        for _ in range(rng.integers(1, 4)):
            self.pole(rng.uniform(0.1, 0.95), int(rng.integers(2)), heads[rng.integers(3)])
        if feature in ('pole', 'traffic light', 'traffic sign'):
            self.pole(near, int(rng.integers(2)), feature if feature != 'pole' else 'lamp')
        for _ in range(rng.integers(0, 4)):
            self.vehicle(rng.uniform(0.1, 0.85), 'car')
        for name, p in (('truck', 0.25), ('bus', 0.15), ('train', 0.08)):
            if rng.random() < p:
                self.vehicle(rng.uniform(0.1, 0.85), name)
        if feature in ('car', 'truck', 'bus', 'train'):
            self.vehicle(near, feature)
        for _ in range(rng.integers(0, 4)):
            self.person(rng.uniform(0.2, 1.0))
        if feature == 'person':
            self.person(near)
        for name, p in (('bicycle', 0.25), ('motorcycle', 0.2)):
            if rng.random() < p:
                self.two_wheeler(rng.uniform(0.2, 1.0), name, ridden=rng.random() < 0.8)
        if feature in ('rider', 'bicycle', 'motorcycle'):
            kind = feature if feature != 'rider' else ('bicycle', 'motorcycle')[rng.integers(2)]
            self.two_wheeler(near, kind, ridden=feature == 'rider' or rng.random() < 0.5)
        if rng.random() < 0.3:
            self.clutter(rng.uniform(0.3, 0.9))

    def build(self, feature: Optional[str] = None) -> Scene:
        """Compose a scene; ``feature`` forces a large instance of that class."""
        self.ground()
        self.sides(feature)
        self.traffic(feature)
        for _, parts in sorted(self._dynamic, key=lambda item: item[0]):
            self.scene.objects.extend(parts)
        if self.ego:
            w, h, e = self.w, self.h, 0.07 * self.h
            hood = [(0, h), (0, h - e), (0.2 * w, h - 1.6 * e), (0.8 * w, h - 1.6 * e), (w, h - e),
                    (w, h)]
            self.scene.objects.append(('ego vehicle', _poly(hood)))
        return self.scene


def make_scene(rng: np.random.Generator,
               width: int,
               height: int,
               feature: Optional[str] = None,
               **kwargs) -> Scene:
    """One random scene (see :class:`SceneBuilder` for ``kwargs``)."""
    return SceneBuilder(rng, width, height, **kwargs).build(feature)
