"""Training and test augmentations with the semantics of the release's mmseg 0.16 pipeline.

Randomness comes from numpy's global generator, which mmengine seeds (``randomness.seed``
in the main process, ``seed + worker_id`` in dataloader workers), so runs are reproducible.
"""
from typing import Dict, Sequence, Tuple

import cv2
import mmcv
import numpy as np
from mmcv.transforms import BaseTransform

from mmseg.registry import TRANSFORMS
from mmseg.utils import IGNORE_INDEX


def _seg_keys(results: Dict) -> list:
    return [key for key in results.get('seg_fields', []) if key in results]


@TRANSFORMS.register_module()
class Resize(BaseTransform):
    """Resize the image (bilinear) and label maps (nearest).

    With ``keep_ratio`` the factor is mmcv's: ``min(max(scale)/long_edge,
    min(scale)/short_edge)``, so a 1914x1052 GTA image and ``scale=(1280, 720)``
    give 1280x704; otherwise the image is resized to exactly ``scale``.

    Args:
        scale: Target (w, h) or (long, short) bound.
        keep_ratio: Keep the aspect ratio.
    """

    def __init__(self, scale: Sequence[int], keep_ratio: bool = True) -> None:
        if len(scale) != 2:
            raise ValueError(f'Resize: scale must be (w, h), got {scale!r}')
        self.scale = (int(scale[0]), int(scale[1]))
        self.keep_ratio = keep_ratio

    def transform(self, results: Dict) -> Dict:
        img = results['img']
        h, w = img.shape[:2]
        if self.keep_ratio:
            new_w, new_h = mmcv.rescale_size((w, h), self.scale)
        else:
            new_w, new_h = self.scale
        results['img'] = mmcv.imresize(img, (new_w, new_h), interpolation='bilinear')
        for key in _seg_keys(results):
            results[key] = mmcv.imresize(results[key], (new_w, new_h), interpolation='nearest')
        results['img_shape'] = (new_h, new_w)
        results['scale_factor'] = (new_w / w, new_h / h)
        results['keep_ratio'] = self.keep_ratio
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(scale={self.scale}, keep_ratio={self.keep_ratio})'


@TRANSFORMS.register_module()
class RandomCrop(BaseTransform):
    """Random crop of ``crop_size`` (h, w), optionally limiting the largest class.

    With ``cat_max_ratio < 1`` the crop is re-drawn up to 10 times until it holds at
    least two non-ignored classes and the largest one covers less than
    ``cat_max_ratio`` of the non-ignored pixels; otherwise the last draw is kept
    (mmseg 0.16 behaviour). An image smaller than the crop is kept whole along that
    side (padding is the data preprocessor's job).

    Args:
        crop_size: (h, w).
        cat_max_ratio: Largest allowed share of one class in the crop.
        ignore_index: Label excluded from the ratio.
    """

    def __init__(self,
                 crop_size: Sequence[int],
                 cat_max_ratio: float = 1.0,
                 ignore_index: int = IGNORE_INDEX) -> None:
        if len(crop_size) != 2 or min(crop_size) <= 0:
            raise ValueError(f'RandomCrop: crop_size must be (h, w) > 0, got {crop_size!r}')
        self.crop_size = (int(crop_size[0]), int(crop_size[1]))
        self.cat_max_ratio = cat_max_ratio
        self.ignore_index = ignore_index

    def _draw(self, shape: Tuple[int, int]) -> Tuple[int, int, int, int]:
        margin_h = max(shape[0] - self.crop_size[0], 0)
        margin_w = max(shape[1] - self.crop_size[1], 0)
        y0 = np.random.randint(0, margin_h + 1)
        x0 = np.random.randint(0, margin_w + 1)
        return y0, min(y0 + self.crop_size[0], shape[0]), x0, min(x0 + self.crop_size[1], shape[1])

    def _acceptable(self, seg: np.ndarray) -> bool:
        labels, counts = np.unique(seg, return_counts=True)
        counts = counts[labels != self.ignore_index]
        return len(counts) > 1 and counts.max() / counts.sum() < self.cat_max_ratio

    def transform(self, results: Dict) -> Dict:
        img = results['img']
        box = self._draw(img.shape[:2])
        if self.cat_max_ratio < 1.0 and 'gt_seg_map' in results:
            for _ in range(10):
                y0, y1, x0, x1 = box
                if self._acceptable(results['gt_seg_map'][y0:y1, x0:x1]):
                    break
                box = self._draw(img.shape[:2])
        y0, y1, x0, x1 = box
        results['img'] = img[y0:y1, x0:x1, ...]
        for key in _seg_keys(results):
            results[key] = results[key][y0:y1, x0:x1]
        results['img_shape'] = results['img'].shape[:2]
        results['crop_bbox'] = (y0, y1, x0, x1)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(crop_size={self.crop_size}, '
                f'cat_max_ratio={self.cat_max_ratio})')


@TRANSFORMS.register_module()
class RandomFlip(BaseTransform):
    """Flip image and labels with probability ``prob`` (horizontal by default).

    Args:
        prob: Flip probability.
        direction: 'horizontal' or 'vertical'.
    """

    def __init__(self, prob: float = 0.5, direction: str = 'horizontal') -> None:
        if not 0.0 <= prob <= 1.0 or direction not in ('horizontal', 'vertical'):
            raise ValueError(f'RandomFlip: bad prob={prob!r} or direction={direction!r}')
        self.prob = prob
        self.direction = direction

    def transform(self, results: Dict) -> Dict:
        flip = bool(np.random.rand() < self.prob)
        if flip:
            results['img'] = mmcv.imflip(results['img'], direction=self.direction)
            for key in _seg_keys(results):
                results[key] = mmcv.imflip(results[key], direction=self.direction)
        results['flip'] = flip
        results['flip_direction'] = self.direction if flip else None
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(prob={self.prob}, direction={self.direction!r})'


def _affine(img: np.ndarray, alpha: float = 1.0, beta: float = 0.0) -> np.ndarray:
    """``clip(img * alpha + beta, 0, 255)`` as uint8."""
    return np.clip(img.astype(np.float32) * alpha + beta, 0, 255).astype(np.uint8)


@TRANSFORMS.register_module()
class PhotoMetricDistortion(BaseTransform):
    """Released photometric distortion on a BGR uint8 image.

    Order: brightness, then contrast either first (mode 1) or last (mode 0), with
    saturation and hue (HSV space) in between. Each step is applied with p = 0.5.

    Args:
        brightness_delta: Additive delta drawn from U(-d, d).
        contrast_range: Multiplicative factor range.
        saturation_range: Factor range on the HSV saturation channel.
        hue_delta: Integer shift of the OpenCV hue channel (0..179), from [-d, d).
    """

    def __init__(self,
                 brightness_delta: int = 32,
                 contrast_range: Sequence[float] = (0.5, 1.5),
                 saturation_range: Sequence[float] = (0.5, 1.5),
                 hue_delta: int = 18) -> None:
        self.brightness_delta = brightness_delta
        self.contrast_lower, self.contrast_upper = contrast_range
        self.saturation_lower, self.saturation_upper = saturation_range
        self.hue_delta = hue_delta

    def brightness(self, img: np.ndarray) -> np.ndarray:
        if np.random.randint(2):
            return _affine(img,
                           beta=np.random.uniform(-self.brightness_delta, self.brightness_delta))
        return img

    def contrast(self, img: np.ndarray) -> np.ndarray:
        if np.random.randint(2):
            return _affine(img, alpha=np.random.uniform(self.contrast_lower, self.contrast_upper))
        return img

    def saturation(self, img: np.ndarray) -> np.ndarray:
        if np.random.randint(2):
            hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
            factor = np.random.uniform(self.saturation_lower, self.saturation_upper)
            hsv[:, :, 1] = _affine(hsv[:, :, 1], alpha=factor)
            return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
        return img

    def hue(self, img: np.ndarray) -> np.ndarray:
        if np.random.randint(2):
            hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
            shift = np.random.randint(-self.hue_delta, self.hue_delta)
            hsv[:, :, 0] = ((hsv[:, :, 0].astype(np.int32) + shift) % 180).astype(np.uint8)
            return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
        return img

    def transform(self, results: Dict) -> Dict:
        img = self.brightness(results['img'])
        contrast_first = np.random.randint(2)
        if contrast_first == 1:
            img = self.contrast(img)
        img = self.saturation(img)
        img = self.hue(img)
        if contrast_first == 0:
            img = self.contrast(img)
        results['img'] = img
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(brightness_delta={self.brightness_delta}, '
                f'contrast_range=({self.contrast_lower}, {self.contrast_upper}), '
                f'saturation_range=({self.saturation_lower}, {self.saturation_upper}), '
                f'hue_delta={self.hue_delta})')
