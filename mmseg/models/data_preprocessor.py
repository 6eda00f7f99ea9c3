"""Batch the pipeline's uint8 images and labels into normalised, padded tensors.

Design follows mmsegmentation 1.x's ``SegDataPreProcessor``: normalisation and
padding live here (not in the pipeline) so that they run on the model's device.
For DIFF the config sets mean = std = 127.5 and ``bgr_to_rgb=True``, which maps
cv2's BGR uint8 images to RGB in [-1, 1], the VAE's input range.
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseDataPreprocessor

from mmseg.registry import MODELS
from mmseg.utils import IGNORE_INDEX
from .utils import pad_right_bottom, padded_size

_TEST_CFG_KEYS = {'size', 'size_divisor'}


@MODELS.register_module()
class SegDataPreProcessor(BaseDataPreprocessor):
    """Stack, colour-convert, normalise and pad a batch of images and labels.

    Args:
        mean (Sequence[float], optional): per-channel mean, in the output channel
            order. None: no normalisation. Defaults to None.
        std (Sequence[float], optional): per-channel std. Defaults to None.
        size (Sequence[int], optional): training batches are padded to at least
            this (H, W). Defaults to None.
        size_divisor (int, optional): training batches are padded to multiples
            of it. Defaults to None.
        pad_val (float): image padding value, applied after normalisation.
            Defaults to 0.
        seg_pad_val (int): label padding value. Defaults to 255.
        bgr_to_rgb (bool): swap BGR to RGB. Defaults to False.
        rgb_to_bgr (bool): swap RGB to BGR. Defaults to False.
        test_cfg (dict, optional): ``dict(size=..., size_divisor=...)`` for
            evaluation batches (labels are left untouched there; the segmentor
            crops the predictions back using ``padding_size``). Defaults to None.
        non_blocking (bool): non-blocking host-to-device copies. Defaults to False.
    """

    def __init__(self,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 size: Optional[Sequence[int]] = None,
                 size_divisor: Optional[int] = None,
                 pad_val: float = 0,
                 seg_pad_val: int = IGNORE_INDEX,
                 bgr_to_rgb: bool = False,
                 rgb_to_bgr: bool = False,
                 test_cfg: Optional[dict] = None,
                 non_blocking: bool = False) -> None:
        super().__init__(non_blocking)
        if bgr_to_rgb and rgb_to_bgr:
            raise ValueError('SegDataPreProcessor: bgr_to_rgb and rgb_to_bgr cannot both be True')
        if (mean is None) != (std is None):
            raise ValueError('SegDataPreProcessor: give both mean and std, or neither')
        unknown = set(test_cfg or {}) - _TEST_CFG_KEYS
        if unknown:
            raise ValueError(f'SegDataPreProcessor: unknown test_cfg key(s) {sorted(unknown)}; '
                             f'expected a subset of {sorted(_TEST_CFG_KEYS)}')
        self._enable_normalize = mean is not None
        if self._enable_normalize:
            self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1),
                                 False)
            self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(-1, 1, 1),
                                 False)
        self.size = tuple(size) if size is not None else None
        self.size_divisor = size_divisor
        self.pad_val = pad_val
        self.seg_pad_val = seg_pad_val
        self.swap_channels = bgr_to_rgb or rgb_to_bgr
        self.test_cfg = dict(test_cfg or {})

    def forward(self, data: dict, training: bool = False) -> Dict[str, Any]:
        """Process ``inputs``/``data_samples`` and, when present, ``target_*`` alike.

        Args:
            data (dict): a collated batch: ``inputs`` (list of (3, H, W) uint8
                tensors or a (B, 3, H, W) tensor), ``data_samples`` (list of
                SegDataSample, optional), and optionally ``target_inputs`` /
                ``target_data_samples``.
            training (bool): training mode pads labels too. Defaults to False.

        Returns:
            dict: the same keys, images as one float (B, 3, H', W') tensor.
        """
        if 'inputs' not in data:
            raise KeyError(f'SegDataPreProcessor: the batch has no "inputs" key '
                           f'(keys: {sorted(data)})')
        data = self.cast_data(data)
        out = dict(data)
        out['inputs'], out['data_samples'] = self._process(data['inputs'],
                                                           data.get('data_samples'), training)
        if 'target_inputs' in data:
            out['target_inputs'], out['target_data_samples'] = self._process(
                data['target_inputs'], data.get('target_data_samples'), training)
        return out

    def _process(self, inputs: Any, data_samples: Optional[list],
                 training: bool) -> Tuple[torch.Tensor, Optional[list]]:
        images = self._as_list(inputs)
        images = [self._normalize(img) for img in images]
        if training:
            size, divisor = self.size, self.size_divisor
        else:
            size, divisor = self.test_cfg.get('size'), self.test_cfg.get('size_divisor')
        max_h = max(img.shape[-2] for img in images)
        max_w = max(img.shape[-1] for img in images)
        height, width = padded_size(max_h, max_w, size, divisor)
        batch = torch.stack([pad_right_bottom(img, height, width, self.pad_val)
                             for img in images])
        if data_samples is not None:
            self._update_samples(images, data_samples, (height, width), training)
        return batch, data_samples

    @staticmethod
    def _as_list(inputs: Any) -> List[torch.Tensor]:
        if isinstance(inputs, torch.Tensor):
            if inputs.dim() == 3:
                inputs = inputs[None]
            if inputs.dim() != 4:
                raise ValueError(f'SegDataPreProcessor: expected inputs of shape (B, 3, H, W), '
                                 f'got {tuple(inputs.shape)}')
            return list(inputs)
        if not isinstance(inputs, (list, tuple)) or not inputs:
            raise TypeError(f'SegDataPreProcessor: expected "inputs" to be a non-empty list of '
                            f'(3, H, W) tensors, got {type(inputs).__name__}')
        for img in inputs:
            if not isinstance(img, torch.Tensor) or img.dim() != 3:
                raise ValueError(f'SegDataPreProcessor: every input must be a (3, H, W) tensor, '
                                 f'got {getattr(img, "shape", type(img).__name__)}')
        return list(inputs)

    def _normalize(self, img: torch.Tensor) -> torch.Tensor:
        if self.swap_channels:
            if img.shape[0] != 3:
                raise ValueError(f'SegDataPreProcessor: channel swap needs 3-channel images, '
                                 f'got {img.shape[0]} channels')
            img = img[[2, 1, 0], ...]
        img = img.float()
        if self._enable_normalize:
            img = (img - self.mean) / self.std
        return img

    def _update_samples(self, images: List[torch.Tensor], data_samples: list,
                        pad_shape: Tuple[int, int], training: bool) -> None:
        if len(data_samples) != len(images):
            raise ValueError(f'SegDataPreProcessor: {len(images)} images but '
                             f'{len(data_samples)} data samples')
        height, width = pad_shape
        for img, sample in zip(images, data_samples):
            img_h, img_w = img.shape[-2:]
            meta = dict(pad_shape=(height, width), batch_input_shape=(height, width),
                        # Batch padding only, (left, right, top, bottom) as in mmseg 1.x.
                        padding_size=[0, width - img_w, 0, height - img_h])
            if 'img_shape' not in sample:  # keep the pipeline's (it may have padded itself)
                meta['img_shape'] = (img_h, img_w)
            sample.set_metainfo(meta)
            if training and 'gt_sem_seg' in sample:
                # PixelData checks new fields against the old shape: delete, then set.
                gt = sample.gt_sem_seg.data
                del sample.gt_sem_seg.data
                sample.gt_sem_seg.data = pad_right_bottom(gt, height, width, self.seg_pad_val)
