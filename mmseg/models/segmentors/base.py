"""Base segmentor: mode dispatch, config validation and prediction post-processing."""
from abc import ABCMeta, abstractmethod
from typing import Dict, Iterable, List, Optional, Union

import torch
from mmengine.model import BaseModel
from mmengine.structures import PixelData

from mmseg.structures import SegDataSample
from mmseg.utils import OptConfigType, OptSampleList, SampleList, stable_seed
from ..utils import resize


def checked_cfg(cfg: OptConfigType, name: str, allowed: Iterable[str]) -> dict:
    """``cfg`` as a plain dict; an unknown key is an error naming ``name`` and the allowed keys."""
    cfg = dict(cfg or {})
    unknown = set(cfg) - set(allowed)
    if unknown:
        raise ValueError(f'{name}: unknown key(s) {sorted(unknown)}; '
                         f'expected a subset of {sorted(allowed)}')
    return cfg


def check_label_prompt_classes(backbone, num_classes: int) -> None:
    """A DIFF backbone's ``label_prompts`` keys must be classes of the head: [0, num_classes).

    Raises:
        ConfigError: naming the DIFF config key and the keys outside the classes.
    """
    config = getattr(getattr(backbone, 'encoder', None), 'config', None)
    prompts = getattr(config, 'label_prompts', None) or {}
    bad = sorted(key for key in prompts if not 0 <= key < num_classes)
    if bad:
        from ..backbones.diff.config import ConfigError
        raise ConfigError(f"DIFF config key 'label_prompts': keys {bad} are not classes of the "
                          f'decode head (train ids 0..{num_classes - 1})')


def image_identity(meta: dict, index: int) -> str:
    """What seeds an image's noise: its file name, or its batch position without a path."""
    path = str(meta.get('img_path') or '')
    return path.replace('\\', '/').rsplit('/', 1)[-1] if path else f'<batch index {index}>'


class BaseSegmentor(BaseModel, metaclass=ABCMeta):
    """Segmentor on mmengine's ``BaseModel`` (mmseg 1.x vocabulary).

    Subclasses implement ``loss``, ``predict`` and ``_forward``; ``forward``
    dispatches on ``mode`` as mmengine's loops expect.
    """

    def forward(self, inputs: torch.Tensor, data_samples: OptSampleList = None,
                mode: str = 'tensor') -> Union[Dict[str, torch.Tensor], SampleList, torch.Tensor]:
        """``mode``: 'loss' -> dict of losses, 'predict' -> data samples, 'tensor' -> logits."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise ValueError(f"{type(self).__name__}.forward: mode must be 'loss', 'predict' or "
                         f"'tensor', got {mode!r}")

    @abstractmethod
    def loss(self, inputs: torch.Tensor, data_samples: SampleList) -> Dict[str, torch.Tensor]:
        """Training losses of one batch."""

    @abstractmethod
    def predict(self, inputs: torch.Tensor, data_samples: OptSampleList = None) -> SampleList:
        """Predictions at each image's original size."""

    @abstractmethod
    def _forward(self, inputs: torch.Tensor, data_samples: OptSampleList = None) -> torch.Tensor:
        """Raw network output."""

    @staticmethod
    def batch_img_metas(inputs: torch.Tensor, data_samples: OptSampleList) -> List[dict]:
        """Each sample's metainfo, or metas describing the bare input when there are none."""
        if data_samples is not None:
            return [sample.metainfo for sample in data_samples]
        shape = tuple(inputs.shape[2:])
        return [dict(ori_shape=shape, img_shape=shape, pad_shape=shape,
                     padding_size=[0, 0, 0, 0])] * inputs.shape[0]

    def postprocess_result(self, seg_logits: torch.Tensor,
                           data_samples: OptSampleList = None) -> SampleList:
        """Crop the batch padding, undo a flip, resize to ``ori_shape``, take the argmax.

        Args:
            seg_logits (Tensor): (B, C, H, W) logits at the batch input size.
            data_samples (list[SegDataSample], optional): updated in place.

        Returns:
            list[SegDataSample]: with ``seg_logits`` (C, h, w) and ``pred_sem_seg``
            (1, h, w) at each image's ``ori_shape``.
        """
        batch, _, height, width = seg_logits.shape
        if data_samples is None:
            data_samples = [SegDataSample() for _ in range(batch)]
        for i, sample in enumerate(data_samples):
            meta = sample.metainfo
            logits = seg_logits[i:i + 1]
            if 'padding_size' in meta:
                left, right, top, bottom = meta['padding_size']
                logits = logits[:, :, top:height - bottom, left:width - right]
            if 'img_shape' in meta:  # padding added by the pipeline itself (right/bottom)
                logits = logits[:, :, :meta['img_shape'][0], :meta['img_shape'][1]]
            if meta.get('flip', False):
                dims = (2, ) if meta.get('flip_direction') == 'vertical' else (3, )
                logits = logits.flip(dims=dims)
            ori_shape = meta.get('ori_shape', logits.shape[2:])
            logits = resize(logits, ori_shape[:2], 'bilinear', self.align_corners)[0]
            sample.set_data(dict(seg_logits=PixelData(data=logits),
                                 pred_sem_seg=PixelData(data=logits.argmax(0, keepdim=True))))
        return data_samples

    @property
    @abstractmethod
    def align_corners(self) -> bool:
        """The ``align_corners`` of every bilinear resize."""

    def _generators(self, batch_img_metas: List[dict],
                    seed: Optional[int]) -> Optional[List[torch.Generator]]:
        """One CPU generator per image, seeded by its file name (``stable_seed``), or None.

        The identity is the image's file name (``img_path`` without its folders), never the
        path as written: the same image gets the same noise, hence the same prediction and
        mIoU, whether the data root is written relative or absolute, or the data moved.
        """
        if seed is None:
            return None
        generators = []
        for index, meta in enumerate(batch_img_metas):
            generators.append(torch.Generator(device='cpu').manual_seed(
                stable_seed(image_identity(meta, index), seed)))
        return generators
