"""mmseg adapter of the DIFF backbone: a DIFF config file in, a registered ``DIFF`` out.

This is the only file that joins the self-contained ``diff`` package to the registry.
"""
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmseg.registry import MODELS
from .diff import DIFFConfig, DIFFEncoder, Trajectory, UNetUsage
from .shared_extraction import SharedExtractionBackbone

REPO_ROOT = Path(__file__).resolve().parents[3]


@MODELS.register_module()
class DIFF(BaseModule, SharedExtractionBackbone):
    """Frozen Stable Diffusion 2.1 features with a trained aggregation and finecoder.

    A :class:`SharedExtractionBackbone`: ``extract`` runs the frozen diffusion part of several
    trajectories with shared UNet calls, ``decode`` the trained part of one.

    Args:
        diff_config: The DIFF YAML file; a relative path is resolved against the repository
            root. Its own relative ``model_id`` is resolved against the YAML file.
        overrides: DIFF config keys replacing the file's values (e.g. ``model_id`` of a tiny
            test model).
        init_cfg: Must be None: the trainable parts initialise themselves as the release did,
            and the frozen parts come from ``model_id`` (load trained weights with
            ``load_from`` instead).
    """

    def __init__(self, diff_config: Union[str, Path] = 'diff_config.yaml',
                 overrides: Optional[Dict[str, Any]] = None, init_cfg: Optional[dict] = None):
        if init_cfg is not None:
            raise ValueError('DIFF: init_cfg is not supported (it would re-initialise the frozen '
                             'UNet); load trained weights with load_from / a checkpoint')
        super().__init__(init_cfg=None)
        path = Path(diff_config).expanduser()
        if not path.is_absolute():
            path = REPO_ROOT / path
        config = DIFFConfig.from_yaml(path, **dict(overrides or {}))
        self.encoder = DIFFEncoder.from_config(config)
        self.out_channels: Tuple[int, ...] = self.encoder.out_channels
        self.out_strides: Tuple[int, ...] = self.encoder.out_strides

    def init_weights(self) -> None:
        """No-op: the trainable parts were initialised on construction; SD stays as loaded."""

    def forward(self, inputs: Tensor, label_map: Optional[Tensor] = None,
                generator: Optional[Sequence[torch.Generator]] = None) -> Tuple[Tensor, ...]:
        """Backbone protocol: (B, 3, H, W) RGB in [-1, 1] -> 4 maps, fine to coarse."""
        return self.encoder(inputs, label_map=label_map, generator=generator)

    def extract(self, trajectories: Sequence[Trajectory]) -> List[Dict[int, Tensor]]:
        """The frozen part of several trajectories (shared UNet calls): features per
        trajectory (see :class:`SharedExtractionBackbone`)."""
        return self.encoder.extract(trajectories)

    def decode(self, features: Dict[int, Tensor]) -> Tuple[Tensor, ...]:
        """The trainable part: one trajectory's features -> the four maps of ``forward``."""
        return self.encoder.decode(features)

    @property
    def last_usage(self) -> UNetUsage:
        """UNet calls and rows per call of the latest extraction (all its passes)."""
        return self.encoder.last_usage

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        """Only the parameters an optimiser should see (``requires_grad=True``)."""
        return self.encoder.trainable_parameters()

