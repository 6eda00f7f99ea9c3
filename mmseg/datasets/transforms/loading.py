"""Loading transforms: the image (OpenCV, BGR) and the train-id label map (Pillow).

Both fail with one message that names the file and says what was expected, so a
broken file in a 25k-image dataset is found at once instead of surfacing as a
shape error deep inside the model.
"""
from pathlib import Path
from typing import Dict, List, Optional

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from PIL import Image, UnidentifiedImageError

from mmseg.registry import TRANSFORMS
from mmseg.utils import IGNORE_INDEX, NUM_CLASSES


class BadInputFileError(ValueError):
    """An image or label file of the dataset is not what the pipeline expects."""


# Converted labels hold the 19 train ids and the ignore value, nothing else.
VALID_LABELS = frozenset(range(NUM_CLASSES)) | {IGNORE_INDEX}


def invalid_label_values(label: np.ndarray) -> List[int]:
    """The values of ``label`` outside {0..18, 255}, sorted (empty: a valid label)."""
    if label.dtype == np.uint8:
        # bincount over 256 bins is ~10x faster than np.unique on a full-size label.
        present = np.flatnonzero(np.bincount(label.ravel(), minlength=256))
    else:
        present = np.unique(label)
    return sorted(int(v) for v in present if int(v) not in VALID_LABELS)


def check_label_values(label: np.ndarray, path: str) -> None:
    """Raise :class:`BadInputFileError` naming ``path`` for a value outside {0..18, 255}.

    Args:
        label: The label map as read from disk.
        path: The file it came from (for the message).
    """
    bad = invalid_label_values(label)
    if bad:
        shown = ', '.join(map(str, bad[:10])) + (' ...' if len(bad) > 10 else '')
        raise BadInputFileError(
            f'Label file {path} holds values {{{shown}}} outside {{0..{NUM_CLASSES - 1}, '
            f'{IGNORE_INDEX}}}: expected a converted train-id label (e.g. *_labelTrainIds.png '
            f'written by tools/convert_datasets/<dataset>.py), not raw ids or colours.')


def check_same_size(results: Dict, label: np.ndarray, path: str) -> None:
    """Raise :class:`BadInputFileError` naming both files if label and image sizes differ.

    A label of another size would otherwise be stretched to the image by the resize
    transforms without a word. Only checked when the image was loaded first (``img``); the
    image's size as loaded (``ori_shape``) counts, since the evaluation pipelines resize the
    image before loading its full-resolution label.
    """
    img = results.get('img')
    if img is None:
        return
    ih, iw = results.get('ori_shape', img.shape[:2])[:2]
    if (ih, iw) == tuple(label.shape[:2]):
        return
    lh, lw = label.shape[:2]
    raise BadInputFileError(f'Label file {path} is {lw}x{lh} (width x height) but its image '
                            f'{results.get("img_path")} is {iw}x{ih}: a label must have the '
                            'size of its image (wrong file pairing, or a label resized by '
                            'mistake).')


def read_label(path: str) -> np.ndarray:
    """Read a single-channel label PNG with Pillow (as the release does), unchanged.

    Args:
        path: Label file.

    Returns:
        (H, W) integer array.
    """
    try:
        with Image.open(path) as img:
            if img.mode not in ('L', 'P', 'I', 'I;16', 'I;16B', 'I;16L'):
                raise BadInputFileError(
                    f'Label file {path} has image mode {img.mode!r}: expected a '
                    'single-channel train-id PNG (mode L or P), not a colour-coded label.')
            return np.array(img)
    except FileNotFoundError:
        raise FileNotFoundError(f'Label file {path} does not exist.') from None
    except (UnidentifiedImageError, OSError) as err:
        raise OSError(f'Cannot read label file {path}: {err}. Expected a valid PNG; '
                      'the file is corrupt or truncated.') from err


@TRANSFORMS.register_module()
class LoadImageFromFile(BaseTransform):
    """Read ``results['img_path']`` with OpenCV as a BGR uint8 array.

    Adds ``img``, ``img_shape`` and ``ori_shape`` ((H, W)).
    """

    def transform(self, results: Dict) -> Dict:
        path = str(results['img_path'])
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            what = 'does not exist' if not Path(path).is_file() else \
                'is empty, corrupt or not an image format OpenCV can decode'
            raise OSError(f'Cannot read image {path}: the file {what}. '
                          'Expected a readable PNG or JPEG image.')
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results


@TRANSFORMS.register_module()
class LoadAnnotations(BaseTransform):
    """Read ``results['seg_map_path']`` (Pillow) into ``gt_seg_map`` and check its values.

    Args:
        check_values: Raise a clear error when the label holds a value outside
            {0..18, 255} (an unconverted or wrong label file).
        check_size: Raise a clear error, naming both files, when the label's size differs
            from its image's (loaded before by :class:`LoadImageFromFile`).
    """

    def __init__(self, check_values: bool = True, check_size: bool = True) -> None:
        self.check_values = check_values
        self.check_size = check_size

    def transform(self, results: Dict) -> Optional[Dict]:
        path = results.get('seg_map_path')
        if path is None:
            raise KeyError(f'LoadAnnotations: the sample of {results.get("img_path")} has no '
                           'seg_map_path; this dataset was built without labels.')
        label = read_label(str(path))
        if label.ndim != 2:
            raise BadInputFileError(f'Label file {path} has shape {label.shape}: expected (H, W).')
        if self.check_size:
            check_same_size(results, label, str(path))
        if self.check_values:
            check_label_values(label, str(path))
        results['gt_seg_map'] = label.astype(np.uint8)
        results.setdefault('seg_fields', [])
        if 'gt_seg_map' not in results['seg_fields']:
            results['seg_fields'].append('gt_seg_map')
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(check_values={self.check_values}, '
                f'check_size={self.check_size})')
