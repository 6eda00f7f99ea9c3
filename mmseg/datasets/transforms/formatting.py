"""Pack a pipeline result into ``dict(inputs, data_samples)`` (mmseg 1.x convention).

Images stay BGR uint8 here; conversion to RGB in [-1, 1] and batch padding happen in
the model's ``SegDataPreProcessor``, as in mmseg 1.x.
"""
from typing import Dict, Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import PixelData

from mmseg.registry import TRANSFORMS
from mmseg.structures import SegDataSample

DEFAULT_META_KEYS = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape',
                     'scale_factor', 'flip', 'flip_direction', 'reduce_zero_label')


@TRANSFORMS.register_module()
class PackSegInputs(BaseTransform):
    """``inputs``: uint8 tensor (3, H, W), BGR; ``data_samples``: :class:`SegDataSample`.

    ``gt_sem_seg.data`` is an int64 tensor (1, H, W) when a label was loaded.

    Args:
        meta_keys: Keys of the result copied into the sample's metainfo (when present).
    """

    def __init__(self, meta_keys: Sequence[str] = DEFAULT_META_KEYS) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: Dict) -> Dict:
        img = results['img']
        if img.ndim == 2:
            img = img[..., None]
        inputs = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        sample = SegDataSample()
        if 'gt_seg_map' in results:
            seg = np.ascontiguousarray(results['gt_seg_map'][None]).astype(np.int64)
            sample.gt_sem_seg = PixelData(data=torch.from_numpy(seg))
        sample.set_metainfo({key: results[key] for key in self.meta_keys if key in results})
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
