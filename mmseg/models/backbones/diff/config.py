"""Typed, validated configuration of the DIFF backbone, loaded from YAML.

The defaults reproduce the original release (Yux1angJi/DIFF, ``diff_config.yaml``); the
project's ``diff_config.yaml`` repeats every field so the file, not this module, is the
instance in use. Unknown keys and wrong types are errors that name the key.
"""
import dataclasses
import math
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import yaml

from .precision import DTYPES

UNET_OUTPUTS = ('epsilon', 'auto')
AGGREGATION_TYPES = ('direct_aggregation', 'mixing')

# The release's 37 inversion timesteps: 14 coarse values, then every integer from 23 down to 1.
RELEASE_TIMESTEPS = [160, 139, 121, 105, 91, 80, 69, 60, 52, 45, 40, 34, 30, 26] + list(
    range(23, 0, -1))
RELEASE_LABEL_PROMPTS = {
    1: 'A high quality photo; europe city; sidewalk, Paths for pedestrian use',
    3: 'A high quality photo; europe city; wall, Outer walls of buildings or structures',
    12: 'A high quality photo; europe city; rider, People riding bicycles, motorcycles',
    14: 'A high quality photo; europe city; truck, Larger vehicles used for cargo transport',
    16: 'A high quality photo; europe city; train, Vehicles on railway tracks',
}


# The key 'optimize' chose between the optimised and the release's computation; there is one
# path now (the optimised one, same features as the release).
REMOVED_OPTIMIZE = ('{source}: DIFF config key \'optimize\' was removed: the backbone has one '
                    'path (the release\'s features without the work whose result is unused); '
                    'delete the key')


class ConfigError(ValueError):
    """A DIFF configuration value is missing, unknown or of the wrong type."""


@dataclass
class DIFFConfig:
    """All knobs of the DIFF backbone. See ``diff_config.yaml`` for one comment per key."""

    # Local diffusers-format folder of Stable Diffusion 2.1 (release: model_id).
    model_id: str = 'checkpoints/stable-diffusion-2-1'
    # Precision of the frozen diffusion parts: auto = float32 on CPU, float16 autocast on GPU.
    dtype: str = 'auto'
    # Run the frozen UNet through torch.compile (same output within float tolerance).
    compile: bool = False
    # How the UNet output is read: epsilon (as released) or auto (v-prediction converted to eps).
    unet_output: str = 'epsilon'
    # direct_aggregation (release default) or mixing (per-layer bottleneck + softmax weights).
    aggregation_type: str = 'direct_aggregation'
    # Aggregated channels at strides 8, 16, 32 (release projection_dim[3], [2], [1]).
    projection_channels: List[int] = field(default_factory=lambda: [512, 1024, 2048])
    # Channels of the stride-4 map built by the finecoder (release projection_dim_x4).
    stride4_channels: int = 256
    # Bottleneck width = projection channels / this ratio (release: fixed 4).
    bottleneck_ratio: int = 4
    # GroupNorm groups in the aggregation bottlenecks (release: fixed 16).
    aggregation_norm_groups: int = 16
    # GroupNorm groups in the finecoder (release: fixed 32).
    finecoder_norm_groups: int = 32
    # Classifier-free guidance weight w in eps_u + w (eps_c - eps_u).
    guidance_scale: float = 5.0
    # DDIM stochasticity inside the eta window.
    eta: float = 1.0
    # eta applies when eta_min_timestep < t < eta_max_timestep (strict; release s_tmin, s_tmax).
    eta_min_timestep: int = 10
    eta_max_timestep: int = 250
    # Global prompt (also the global branch of path control) and the negative prompt.
    prompt: str = ''
    negative_prompt: str = ''
    # Diffusion timesteps of the inversion, descending (release scheduler_timesteps).
    timesteps: List[int] = field(default_factory=lambda: list(RELEASE_TIMESTEPS))
    # Step indices i (0 = first, cleanest step) whose features are kept, in channel order
    # (release save_timestep).
    saved_steps: List[int] = field(default_factory=lambda: [33, 29, 25, 22, 18, 14, 11, 7, 3])
    # Path-controlled diffusion with label maps (release do_mask_steps).
    use_path_control: bool = True
    # Path control applies when min <= t <= max (inclusive; release mask_min, mask_max).
    path_control_min_timestep: int = -1
    path_control_max_timestep: int = 1000
    # [i, j] of up_blocks[i].resnets[j] whose conv2 output is recorded (release idxs_resnet).
    resnet_indices: List[List[int]] = field(
        default_factory=lambda: [[i, j] for i in range(4) for j in range(3)])
    # [i, j] of up_blocks[i].attentions[j].transformer_blocks[0] (release idxs_ca).
    transformer_indices: List[List[int]] = field(
        default_factory=lambda: [[i, j] for i in range(1, 4) for j in range(3)])
    # Train id -> prompt of its path-control branch (release label_map).
    label_prompts: Dict[int, str] = field(default_factory=lambda: dict(RELEASE_LABEL_PROMPTS))

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not _matches(value, hints[f.name]):
                raise ConfigError(f'DIFF config key {f.name!r}: expected '
                                  f'{_type_name(hints[f.name])}, got {value!r}')
        if isinstance(self.guidance_scale, int) or isinstance(self.eta, int):
            self.guidance_scale, self.eta = float(self.guidance_scale), float(self.eta)
        self._check_values()

    def _check_values(self) -> None:
        _choice('dtype', self.dtype, ('auto', *DTYPES))
        _choice('unet_output', self.unet_output, UNET_OUTPUTS)
        _choice('aggregation_type', self.aggregation_type, AGGREGATION_TYPES)
        _require(len(self.projection_channels) == 3, 'projection_channels',
                 'three widths, for strides 8, 16 and 32')
        _require(all(c > 0 for c in self.projection_channels + [self.stride4_channels]),
                 'projection_channels', 'positive widths')
        _require(self.bottleneck_ratio > 0, 'bottleneck_ratio', 'a positive integer')
        groups = self.aggregation_norm_groups
        _require(groups > 0 and all(c % self.bottleneck_ratio == 0
                                    and (c // self.bottleneck_ratio) % groups == 0
                                    for c in self.projection_channels), 'projection_channels',
                 f'widths whose bottleneck (width / bottleneck_ratio) is divisible by '
                 f'aggregation_norm_groups ({groups})', self.projection_channels)
        groups = self.finecoder_norm_groups
        _require(groups > 0 and all(c % groups == 0 for c in self.projection_channels
                                    + [self.stride4_channels]), 'stride4_channels',
                 f'projection_channels and stride4_channels divisible by finecoder_norm_groups '
                 f'({groups})', self.stride4_channels)
        steps = self.timesteps
        _require(len(steps) > 0 and all(a > b for a, b in zip(steps, steps[1:]))
                 and steps[-1] > 0, 'timesteps', 'positive timesteps in strictly descending order')
        _require(len(self.saved_steps) > 0
                 and all(0 <= i < len(steps) for i in self.saved_steps)
                 and len(set(self.saved_steps)) == len(self.saved_steps), 'saved_steps',
                 f'distinct step indices in [0, {len(steps)}) (indices into the inversion '
                 'steps, not timesteps)')
        for key in ('resnet_indices', 'transformer_indices'):
            pairs = getattr(self, key)
            _require(all(len(p) == 2 and min(p) >= 0 for p in pairs), key,
                     'a list of [up_block, layer] pairs of non-negative integers')
            _require(len({tuple(p) for p in pairs}) == len(pairs), key, 'distinct pairs')
        _require(bool(self.resnet_indices or self.transformer_indices), 'resnet_indices',
                 'at least one hooked layer (resnet_indices or transformer_indices)')
        self._check_sampling_values()

    def _check_sampling_values(self) -> None:
        """Guidance, eta and the timestep windows: finite, in range, ordered.

        ``guidance_scale`` must be finite and >= 0 (0: the unconditional branch only; the
        release uses 5.0; a negative weight would push the features away from the prompts).
        The timesteps' upper bound (the scheduler's ``num_train_timesteps``) is checked when
        the backbone is built, where the scheduler is known.
        """
        for key in ('guidance_scale', 'eta'):
            _require(math.isfinite(getattr(self, key)), key, 'a finite number',
                     getattr(self, key))
        _require(self.guidance_scale >= 0, 'guidance_scale',
                 'a number >= 0 (the release uses 5.0)', self.guidance_scale)
        _require(0.0 <= self.eta <= 1.0, 'eta', 'a number in [0, 1] (0: deterministic DDIM, '
                 '1: the release)', self.eta)
        _require(self.eta_min_timestep < self.eta_max_timestep, 'eta_min_timestep',
                 f'a value below eta_max_timestep ({self.eta_max_timestep}): the eta window '
                 'eta_min_timestep < t < eta_max_timestep would be empty', self.eta_min_timestep)
        _require(self.path_control_min_timestep <= self.path_control_max_timestep,
                 'path_control_min_timestep', f'a value <= path_control_max_timestep '
                 f'({self.path_control_max_timestep}): the path-control window would be empty',
                 self.path_control_min_timestep)
        _require(all(key >= 0 for key in self.label_prompts), 'label_prompts',
                 'train ids >= 0 as keys', sorted(self.label_prompts))

    @classmethod
    def from_yaml(cls, path: Union[str, os.PathLike], **overrides: Any) -> 'DIFFConfig':
        """Load a config from YAML, apply ``overrides``, resolve ``model_id`` against the file.

        A relative ``model_id`` (from the file or from ``overrides``) is resolved against the
        directory of the YAML file, never against the working directory.

        Raises:
            FileNotFoundError: the YAML file does not exist.
            ConfigError: unknown key, wrong type or invalid value (the message names the key).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f'DIFF config file not found: {path}')
        with open(path, encoding='utf-8') as stream:
            data = yaml.safe_load(stream) or {}
        if not isinstance(data, dict):
            raise ConfigError(f'{path}: expected a mapping of DIFF config keys')
        known = {f.name for f in dataclasses.fields(cls)}
        for source, mapping in ((str(path), data), ('overrides', overrides)):
            if 'optimize' in mapping:
                raise ConfigError(REMOVED_OPTIMIZE.format(source=source))
            unknown = sorted(set(map(str, mapping)) - known)
            if unknown:
                raise ConfigError(f'{source}: unknown DIFF config key(s) {unknown}; '
                                  f'known keys: {sorted(known)}')
        data.update(overrides)
        model_id = data.get('model_id', cls.model_id)
        if isinstance(model_id, str) and not Path(model_id).expanduser().is_absolute():
            data['model_id'] = str((path.parent / model_id).resolve())
        try:
            return cls(**data)
        except ConfigError as error:
            raise ConfigError(f'{path}: {error}') from None

    def to_dict(self) -> Dict[str, Any]:
        """A plain dict of all fields (YAML- and JSON-serialisable)."""
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> 'DIFFConfig':
        """A copy with ``changes`` applied (validated)."""
        return dataclasses.replace(self, **changes)


def _matches(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is list:
        return isinstance(value, list) and all(_matches(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(
            _matches(k, args[0]) and _matches(v, args[1]) for k, v in value.items())
    if origin is Union:
        return any(_matches(value, a) for a in args)
    raise TypeError(f'unsupported config type {hint}')


def _type_name(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list:
        return f'a list of {_type_name(args[0])}'
    if origin is dict:
        return f'a mapping {_type_name(args[0])} -> {_type_name(args[1])}'
    return {bool: 'true/false', int: 'an integer', float: 'a number', str: 'a string'}.get(
        hint, str(hint))


def _choice(key: str, value: str, choices: tuple) -> None:
    _require(value in choices, key, f'one of {list(choices)}', value)


def _require(ok: bool, key: str, expected: str, value: Optional[Any] = None) -> None:
    if not ok:
        got = f', got {value!r}' if value is not None else ''
        raise ConfigError(f'DIFF config key {key!r}: expected {expected}{got}')
