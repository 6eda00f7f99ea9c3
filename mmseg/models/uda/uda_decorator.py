"""Base class of unsupervised-domain-adaptation wrappers around a segmentor.

Design follows DAFormer's ``UDADecorator`` (mmseg/models/uda/uda_decorator.py):
the wrapper owns the segmentor being trained and forwards every inference call
to it, so evaluation, checkpoints and tools see an ordinary segmentor; only
training differs.
"""
from typing import Dict, List, Optional, Union

import torch
from mmengine.model import BaseModel

from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig, OptSampleList, SampleList


class UDADecorator(BaseModel):
    """Wraps a segmentor; inference passes straight through to it.

    The data preprocessor is the wrapped segmentor's own object (one module,
    shared), so source and target batches are normalised exactly as at test
    time.

    Args:
        model (dict): config of the wrapped segmentor (e.g. ``EncoderDecoder``).
        data_preprocessor (dict, optional): used only when ``model`` has none
            (mmengine's Runner passes a config's top-level ``data_preprocessor``
            here); the segmentor's own entry takes precedence.
        init_cfg (dict, optional): initialisation config of the wrapper.
    """

    def __init__(self, model: ConfigType, data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        if isinstance(model, dict):
            model = dict(model)
            if model.get('data_preprocessor') is None and data_preprocessor is not None:
                model['data_preprocessor'] = data_preprocessor
        segmentor = MODELS.build(model) if isinstance(model, dict) else model
        super().__init__(data_preprocessor=segmentor.data_preprocessor, init_cfg=init_cfg)
        self.model = segmentor

    def forward(self,
                inputs: torch.Tensor,
                data_samples: OptSampleList = None,
                mode: str = 'tensor',
                target_inputs: Optional[torch.Tensor] = None,
                target_data_samples: OptSampleList = None
                ) -> Union[Dict[str, torch.Tensor], SampleList, torch.Tensor]:
        """'loss' runs the adaptation objective; 'predict'/'tensor' the segmentor.

        ``target_inputs`` / ``target_data_samples`` are the preprocessed target
        batch of a UDA dataset item (absent for source-only data).
        """
        if mode == 'loss':
            return self.loss(inputs, data_samples, target_inputs, target_data_samples)
        return self.model(inputs, data_samples, mode)

    def loss(self,
             inputs: torch.Tensor,
             data_samples: SampleList,
             target_inputs: Optional[torch.Tensor] = None,
             target_data_samples: OptSampleList = None) -> Dict[str, torch.Tensor]:
        """Source-only objective: the segmentor's own loss (subclasses add adaptation)."""
        return self.model.loss(inputs, data_samples)

    # ------------------------------------------------------ inference pass-through
    def predict(self, inputs: torch.Tensor, data_samples: OptSampleList = None) -> SampleList:
        return self.model.predict(inputs, data_samples)

    def _forward(self, inputs: torch.Tensor, data_samples: OptSampleList = None) -> torch.Tensor:
        return self.model._forward(inputs, data_samples)

    def extract_feat(self, inputs: torch.Tensor, *args, **kwargs):
        return self.model.extract_feat(inputs, *args, **kwargs)

    def encode_decode(self, inputs: torch.Tensor, batch_img_metas: Optional[List[dict]] = None,
                      *args, **kwargs) -> torch.Tensor:
        return self.model.encode_decode(inputs, batch_img_metas, *args, **kwargs)

    def inference(self, inputs: torch.Tensor, batch_img_metas: List[dict], *args, **kwargs):
        return self.model.inference(inputs, batch_img_metas, *args, **kwargs)

    @property
    def align_corners(self) -> bool:
        return self.model.align_corners

    @property
    def num_classes(self) -> int:
        return self.model.num_classes
