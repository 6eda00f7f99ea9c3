"""DIFFEncoder: images in, four feature maps (strides 4, 8, 16, 32) out."""
import json
import logging
import os
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from .aggregation import DirectAggregation, MixingAggregation
from .components import SDComponents, load_sd_components
from .config import ConfigError, DIFFConfig
from .extractor import DiffusionFeatureExtractor, Trajectory, UNetUsage
from .finecoder import Finecoder
from .layout import up_block_scales

logger = logging.getLogger(__name__)

NUM_AGGREGATED_LEVELS = 3  # strides 8, 16 and 32 feed the finecoder


class DIFFEncoder(nn.Module):
    """The DIFF backbone: frozen Stable Diffusion features, trained aggregation and finecoder.

    Only the aggregation and the finecoder are trainable and only they appear in
    ``state_dict()``; the diffusion parts are reloaded from ``config.model_id``.

    Args:
        config: The DIFF configuration.
        components: Stable Diffusion parts (see :func:`load_sd_components`); use
            :meth:`from_config` to load them from ``config.model_id``.
        compile_options: Keyword arguments of ``torch.compile`` for ``compile: true``.

    Attributes:
        out_channels: Channels of the outputs, fine to coarse (256, 512, 1024, 2048 by default).
        out_strides: Their strides (4, 8, 16, 32 for Stable Diffusion).
    """

    def __init__(self, config: DIFFConfig, components: SDComponents,
                 compile_options: Optional[Dict[str, Any]] = None):
        super().__init__()
        self.config = config
        logger.info('DIFF backbone config: %s', json.dumps(config.to_dict(), sort_keys=True))
        self.extractor = DiffusionFeatureExtractor(components, config, compile_options)
        strides = self._aggregated_strides()
        out = dict(zip(strides, config.projection_channels))
        # The release also aggregated the coarser stride-64 level and discarded the result;
        # only the aggregated strides are extracted.
        self.recorded_strides = tuple(strides)
        # Built before the aggregation, as in the release's order of initial weights.
        self.finecoder = Finecoder(config.projection_channels, config.stride4_channels,
                                   config.finecoder_norm_groups)
        levels = [lv for lv in self.extractor.levels if lv.stride in self.recorded_strides]
        if config.aggregation_type == 'mixing':
            self.aggregation = MixingAggregation(levels, out, config.bottleneck_ratio,
                                                 config.aggregation_norm_groups)
        else:
            self.aggregation = DirectAggregation({lv.stride: lv.channels for lv in levels}, out,
                                                 config.bottleneck_ratio,
                                                 config.aggregation_norm_groups)
        self.aggregated_strides: Tuple[int, ...] = tuple(strides)
        self.out_strides: Tuple[int, ...] = (strides[0] // 2, *strides)
        self.out_channels: Tuple[int, ...] = (config.stride4_channels,
                                              *config.projection_channels)

    @classmethod
    def from_config(cls, config: Union[DIFFConfig, str, os.PathLike],
                    **overrides) -> 'DIFFEncoder':
        """Build from a config (or a YAML path plus overrides), loading SD from ``model_id``."""
        if not isinstance(config, DIFFConfig):
            config = DIFFConfig.from_yaml(config, **overrides)
        elif overrides:
            config = config.replace(**overrides)
        return cls(config, load_sd_components(config))

    def _aggregated_strides(self) -> list:
        """The three finest strides of the UNet's up path; each must have recorded layers."""
        extractor = self.extractor
        recorded = set(extractor.strides)
        scales = sorted(s * extractor.latent_factor for s in up_block_scales(extractor.unet))
        strides = scales[:NUM_AGGREGATED_LEVELS]
        missing = [s for s in strides if s not in recorded]
        if len(strides) < NUM_AGGREGATED_LEVELS or missing:
            raise ConfigError(f'DIFF config keys \'resnet_indices\'/\'transformer_indices\': '
                              f'expected hooked layers at strides {strides}, none at {missing}')
        return strides

    def forward(self, images: Tensor, label_map: Optional[Tensor] = None,
                generator: Optional[Sequence[torch.Generator]] = None) -> Tuple[Tensor, ...]:
        """Feature maps of ``images``, fine to coarse.

        Args:
            images: (B, 3, H, W) RGB in [-1, 1]; H and W multiples of 64 (for SD).
            label_map: Optional (B, 1, H, W) integer train ids (255 = ignore): turns on the
                path-controlled diffusion branches.
            generator: None (global RNG) or one ``torch.Generator`` per image.

        Returns:
            Tensors of shape (B, out_channels[k], H / out_strides[k], W / out_strides[k]).
        """
        return self.decode(self.extract([Trajectory(images, label_map, generator)])[0])

    def extract(self, trajectories: Sequence[Trajectory]) -> List[Dict[int, Tensor]]:
        """The frozen part: diffusion features ``{stride: tensor}`` of each trajectory, with
        shared UNet calls (see :meth:`DiffusionFeatureExtractor.extract`).

        No gradient flows through them; :meth:`decode` is the trainable part, and
        ``[self.decode(f) for f in self.extract(ts)]`` equals ``[self(t.images, t.label_map,
        t.generator) for t in ts]``.
        """
        return self.extractor.extract(trajectories, strides=self.recorded_strides)

    def decode(self, features: Dict[int, Tensor]) -> Tuple[Tensor, ...]:
        """The trainable part: aggregation and finecoder over one trajectory's features."""
        aggregated = self.aggregation(features)
        return tuple(self.finecoder(*(aggregated[s] for s in self.aggregated_strides)))

    @property
    def last_usage(self) -> UNetUsage:
        """UNet calls and rows per call of the latest extraction (all its trajectories)."""
        return self.extractor.last_usage

    def named_trainable_parameters(self) -> Iterator[Tuple[str, nn.Parameter]]:
        """Parameters that require gradients (the aggregation and the finecoder)."""
        return ((n, p) for n, p in self.named_parameters() if p.requires_grad)

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters that require gradients (what an optimiser should get)."""
        return (p for _, p in self.named_trainable_parameters())
