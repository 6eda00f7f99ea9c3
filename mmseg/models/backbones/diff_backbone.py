"""mmseg adapter of the DIFF backbone: a DIFF config file in, a registered ``DIFF`` out.

This is the only file that joins the self-contained ``diff`` package to the registry.
"""
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmseg.registry import MODELS
from .diff import DIFFConfig, DIFFEncoder, Trajectory, UNetUsage

REPO_ROOT = Path(__file__).resolve().parents[3]


@MODELS.register_module()
class DIFF(BaseModule):
    """Frozen Stable Diffusion 2.1 features with a trained aggregation and finecoder.

    Args:
        diff_config: The DIFF YAML file; a relative path is resolved against the repository
            root. Its own relative ``model_id`` is resolved against the YAML file.
        overrides: DIFF config keys replacing the file's values (e.g. ``model_id`` of a tiny
            test model, ``optimize=False``).
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

    def forward_trajectories(self, passes: Sequence[Mapping[str, Any]]
                             ) -> List[Tuple[Tensor, ...]]:
        """Several backbone passes with shared UNet calls: one output of ``forward`` per pass.

        Args:
            passes: Each a mapping of ``forward``'s arguments: ``inputs`` and optionally
                ``label_map`` and ``generator``.
        """
        return self.encoder.forward_trajectories(_trajectories(passes))

    def extract_raw(self, passes: Sequence[Mapping[str, Any]]) -> List[Dict[int, Tensor]]:
        """The frozen part of several passes (shared UNet calls): raw features per pass."""
        return self.encoder.extract_features(_trajectories(passes))

    def decode_raw(self, raw: Dict[int, Tensor]) -> Tuple[Tensor, ...]:
        """The trainable part: one pass's raw features -> the four maps of ``forward``."""
        return self.encoder.decode_features(raw)

    @property
    def last_usage(self) -> UNetUsage:
        """UNet calls and rows per call of the latest extraction (all its passes)."""
        return self.encoder.last_usage

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        """Only the parameters an optimiser should see (``requires_grad=True``)."""
        return self.encoder.trainable_parameters()


def _trajectories(passes: Sequence[Mapping[str, Any]]) -> List[Trajectory]:
    """Backbone-protocol arguments (``inputs``, ``label_map``, ``generator``) -> trajectories."""
    trajectories = []
    for index, arguments in enumerate(passes):
        unknown = set(arguments) - {'inputs', 'label_map', 'generator'}
        if 'inputs' not in arguments or unknown:
            raise ValueError(f'DIFF: pass {index} must be a mapping with inputs and optionally '
                             f'label_map and generator, got keys {sorted(arguments)}')
        trajectories.append(Trajectory(arguments['inputs'], arguments.get('label_map'),
                                       arguments.get('generator')))
    return trajectories
