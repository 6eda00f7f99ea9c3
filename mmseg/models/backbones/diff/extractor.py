"""Frozen Stable Diffusion as a feature extractor: VAE encode, stochastic inversion, hooks.

Design follows the DIFF release (arXiv 2406.00777; reference-spec.md section 1), without
replacing any diffusers forward: features are read with forward hooks that are removed after
every UNet call.
"""
import contextlib
import logging
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .components import SDComponents
from .config import DIFFConfig
from .hooks import FeatureRecorder
from .inversion import (InversionStep, average_in_masks, build_inversion_steps,
                        inversion_update, v_to_epsilon)
from .layout import Level, describe_levels, latent_factor, size_multiple
from .prompts import encode_prompts
from .rows import RowPlan, draw_step_noise, plan_rows

logger = logging.getLogger(__name__)

DTYPES = dict(float32=torch.float32, float16=torch.float16, bfloat16=torch.bfloat16)


@dataclass(frozen=True)
class UNetUsage:
    """UNet work of the latest forward: the number of calls and the batch rows of each."""

    calls: int
    rows: Tuple[int, ...]


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """The compute precision of the frozen parts: ``auto`` = float32 on CPU, float16 elsewhere."""
    if name == 'auto':
        return torch.float32 if device.type == 'cpu' else torch.float16
    return DTYPES[name]


class DiffusionFeatureExtractor(nn.Module):
    """Multi-level UNet features of images, from a frozen Stable Diffusion.

    The frozen parts stay in eval mode, have ``requires_grad=False`` and are left out of
    ``state_dict()``; loading a state dict without them is not an error.

    Args:
        components: Loaded (or randomly built) Stable Diffusion parts.
        config: The DIFF configuration.
    """

    def __init__(self, components: SDComponents, config: DIFFConfig):
        super().__init__()
        self.config = config
        self.unet = components.unet.requires_grad_(False).eval()
        self.vae = components.vae.requires_grad_(False).eval()
        self.vae.decoder = None  # only the encoder is ever used
        self.scheduler = components.scheduler
        self.tokenizer = components.tokenizer
        self.steps: List[InversionStep] = build_inversion_steps(
            config.timesteps, components.scheduler.alphas_cumprod.tolist(), config.eta,
            config.eta_min_timestep, config.eta_max_timestep)
        self._v_prediction = self._reads_v_prediction()
        # On the device with the model, so no step copies a timestep from the host.
        self.register_buffer('unet_timesteps', torch.tensor([s.timestep for s in self.steps]),
                             persistent=False)
        self.levels: List[Level] = describe_levels(
            self.unet, self.vae, config.resnet_indices, config.transformer_indices,
            len(config.saved_steps))
        self.size_multiple = size_multiple(self.unet, self.vae)
        self.latent_factor = latent_factor(self.vae)
        # Every prompt ever needed, each embedded once.
        prompts = [config.negative_prompt, config.prompt, *config.label_prompts.values()]
        self.prompts: List[str] = list(dict.fromkeys(prompts))
        if components.text_encoder is None:
            raise ValueError('DIFF needs the text encoder to embed its prompts (components.'
                             'text_encoder is None)')
        text_encoder = components.text_encoder.requires_grad_(False).eval()
        self.register_buffer('prompt_embeddings',
                             encode_prompts(self.tokenizer, text_encoder, self.prompts),
                             persistent=False)
        # The straightforward path re-encodes its prompts at every call; the optimised one
        # does not need the text encoder after this point.
        self.text_encoder = None if config.optimize else text_encoder
        # Frozen weights are held in the compute precision (cast once, not at every call).
        self.held_dtype = torch.float32
        if config.dtype != 'auto':  # explicit: cast now, before the model is moved
            self.hold_precision(DTYPES[config.dtype])
        self.last_usage = UNetUsage(0, ())
        self.register_state_dict_post_hook(_drop_frozen_state)
        self.register_load_state_dict_pre_hook(_remember_prefix)
        self.register_load_state_dict_post_hook(_ignore_missing_frozen)

    def _reads_v_prediction(self) -> bool:
        kind = self.scheduler.config.prediction_type
        if self.config.unet_output == 'epsilon' or kind == 'epsilon':
            return False
        if kind == 'v_prediction':
            return True
        raise ValueError(f'DIFF config key \'unet_output\': auto supports epsilon and '
                         f'v_prediction schedulers, got prediction_type={kind!r}')

    def train(self, mode: bool = True) -> 'DiffusionFeatureExtractor':
        """The frozen parts stay in eval mode whatever ``mode`` is."""
        return super().train(False)

    @property
    def strides(self) -> List[int]:
        """Strides of the recorded levels, fine to coarse."""
        return [level.stride for level in self.levels]

    def hold_precision(self, dtype: torch.dtype) -> None:
        """Hold the frozen UNet, VAE (and text encoder, if kept) in ``dtype``.

        Prompt embeddings stay as computed at construction (float32); features are stored in
        float32. The trainable parts (aggregation, finecoder, head) are not touched.
        """
        if dtype == self.held_dtype:
            return
        for module in (self.unet, self.vae, self.text_encoder):
            if module is not None:  # nn.Module.to: diffusers' own .to warns about fp32 modules
                nn.Module.to(module, dtype=dtype)
        self.held_dtype = dtype

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        """The single place where the precision of the frozen parts is chosen.

        ``dtype: auto`` is resolved here, by the device the images are on (float32 on CPU,
        float16 elsewhere), so the weights are cast once, at the first call on that device.
        """
        dtype = resolve_dtype(self.config.dtype, device)
        self.hold_precision(dtype)
        return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)

    @torch.no_grad()
    def forward(self, images: Tensor, label_map: Optional[Tensor] = None,
                generator: Optional[Sequence[torch.Generator]] = None,
                strides: Optional[Sequence[int]] = None) -> Dict[int, Tensor]:
        """Features per stride.

        Args:
            images: (B, 3, H, W) RGB in [-1, 1]; H and W multiples of ``size_multiple``.
            label_map: Optional (B, 1, H, W) integer train ids (255 = ignore); turns on the
                path-controlled branches for the classes of ``label_prompts`` it holds.
            generator: None (global RNG) or one ``torch.Generator`` per image, from which all
                randomness of that image is drawn.
            strides: Levels to return (default: all recorded levels).

        Returns:
            ``{stride: (B, channels, H / stride, W / stride)}`` in float32.
        """
        self._check_inputs(images, label_map, generator)
        levels = [lv for lv in self.levels if strides is None or lv.stride in strides]
        with self.autocast(images.device):
            latent_dist = self.vae.encode(images).latent_dist
            x = latent_dist.sample(generator=generator).float() * self.vae.config.scaling_factor
        classes = self._present_classes(label_map)
        masks = self._latent_masks(label_map, classes, x.shape[-2:])
        # The optimised path stops at the UNet call of the last saved step.
        last = max(self.config.saved_steps) if self.config.optimize else len(self.steps) - 1
        steps = self.steps[:last + 1]
        plans = [plan_rows(self._branch_classes(step, classes), self.config, self.prompts,
                           deduplicate=self.config.optimize) for step in steps]
        updates = steps[:-1] if self.config.optimize else steps
        noise = draw_step_noise(updates, plans, x.shape, generator, images.device)
        embeddings = self._prompt_embeddings(plans)
        features = {lv.stride: x.new_empty(x.shape[0], lv.channels, *self._size(lv, x))
                    for lv in levels}
        self._invert(x, steps, plans, embeddings, noise, masks, levels, features)
        self.last_usage = UNetUsage(len(plans), tuple(p.num_rows * x.shape[0] for p in plans))
        return features

    def _invert(self, x: Tensor, steps: Sequence[InversionStep], plans: Sequence[RowPlan],
                embeddings: Dict[int, Tensor], noise: Dict[int, Tensor], masks: Tensor,
                levels: Sequence[Level], features: Dict[int, Tensor]) -> None:
        """The inversion loop; writes the saved steps' features into ``features``."""
        saved = {step: position for position, step in enumerate(self.config.saved_steps)}
        optimize = self.config.optimize
        # The optimised path makes no update after its last UNet call.
        num_updates = len(steps) - 1 if optimize else len(steps)
        for step, plan in zip(steps, plans):
            record = levels if step.index in saved else []
            text = torch.stack([embeddings[i] for i in plan.prompt_indices])
            eps, recorded = self._unet_step(x, step, plan, text, record)
            for level in record:
                self._store(features[level.stride], level, recorded, plan, saved[step.index])
            if step.index >= num_updates:
                break
            branches = inversion_update(x, eps, step, noise.get(step.index))
            x = branches[0] if optimize and plan.num_branches == 1 else average_in_masks(
                branches, masks[:plan.num_branches])
            if not optimize and not torch.isfinite(x).all():  # the release's per-step check
                logger.warning('non-finite latent at inversion step %d', step.index)

    def _unet_step(self, x: Tensor, step: InversionStep, plan: RowPlan, text: Tensor,
                   levels: Sequence[Level]) -> Tuple[Tensor, Dict]:
        """One UNet call over the plan's rows; returns eps per branch and the recorded outputs.

        ``text`` holds one prompt embedding per row group; every group covers the B images.
        """
        batch = x.shape[0]
        embeddings = text.repeat_interleave(batch, dim=0)
        modules = [(layer.key, layer.module(self.unet)) for lv in levels for layer in lv.layers]
        with FeatureRecorder(modules) as recorder, self.autocast(x.device):
            out = self.unet(x.repeat(plan.num_rows, 1, 1, 1), self.unet_timesteps[step.index],
                            encoder_hidden_states=embeddings, return_dict=False)[0]
        out = out.float().view(plan.num_rows, batch, *x.shape[1:])
        uncond = out[plan.uncond_row]
        # Rows are picked with Python indices: an index tensor would be a host-to-device copy.
        cond = torch.stack([out[row] for row in plan.branch_rows])
        eps = uncond + self.config.guidance_scale * (cond - uncond)
        if self._v_prediction:
            eps = v_to_epsilon(eps, x, step)
        return eps, recorder.features

    def _prompt_embeddings(self, plans: Sequence[RowPlan]) -> Dict[int, Tensor]:
        """Embedding of every prompt the plans use: cached, or (as released) encoded per call."""
        needed = sorted({index for plan in plans for index in plan.prompt_indices})
        if self.text_encoder is None:
            return {index: self.prompt_embeddings[index] for index in needed}
        with self.autocast(self.prompt_embeddings.device):
            encoded = encode_prompts(self.tokenizer, self.text_encoder,
                                     [self.prompts[index] for index in needed])
        return dict(zip(needed, encoded))

    def _store(self, target: Tensor, level: Level, recorded: Dict, plan: RowPlan,
               position: int) -> None:
        """Write the level's features of one saved step into their channel slots."""
        batch, height, width = target.shape[0], target.shape[2], target.shape[3]
        for index, layer in enumerate(level.layers):
            output = recorded[layer.key]
            if layer.kind == 'resnet':  # the unconditional rows only
                value = output.reshape(plan.num_rows, batch, *output.shape[1:])[plan.uncond_row]
            else:  # summed over every conditioning row; a merged row counts as many times
                tokens = output.float().reshape(plan.num_rows, batch, height, width, -1)
                value = sum(count * tokens[row] for row, count in enumerate(plan.multiplicities))
                value = value.permute(0, 3, 1, 2)
            start = level.offset(index, position)
            target[:, start:start + layer.channels] = value

    def _size(self, level: Level, x: Tensor) -> Tuple[int, int]:
        return x.shape[-2] // level.scale, x.shape[-1] // level.scale

    def _branch_classes(self, step: InversionStep, classes: List[int]) -> List[int]:
        inside = (self.config.path_control_min_timestep <= step.timestep
                  <= self.config.path_control_max_timestep)
        return classes if inside else []

    def _present_classes(self, label_map: Optional[Tensor]) -> List[int]:
        """Prompted classes present anywhere in the batch (one host sync per call)."""
        if label_map is None or not self.config.use_path_control:
            return []
        present = set(torch.unique(label_map).tolist())
        return sorted(c for c in self.config.label_prompts if c in present)

    def _latent_masks(self, label_map: Optional[Tensor], classes: List[int],
                      size: torch.Size) -> Optional[Tensor]:
        """(1 + k, B, 1, h, w) masks: all ones, then each class downsampled (nearest)."""
        if label_map is None:
            return torch.ones(1, 1, 1, *size, device=self.prompt_embeddings.device)
        shape = (label_map.shape[0], 1, *size)
        masks = [torch.ones(shape, device=label_map.device)]
        for c in classes:
            masks.append(F.interpolate((label_map == c).float(), size=size, mode='nearest'))
        return torch.stack(masks)

    def _check_inputs(self, images: Tensor, label_map: Optional[Tensor],
                      generator: Optional[Sequence[torch.Generator]]) -> None:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f'DIFF expects images of shape (B, 3, H, W) in [-1, 1], got '
                             f'{tuple(images.shape)}')
        height, width, multiple = images.shape[2], images.shape[3], self.size_multiple
        if height % multiple or width % multiple:
            raise ValueError(f'DIFF needs image height and width that are multiples of '
                             f'{multiple}, got {height}x{width}; pad the images first (e.g. '
                             f'size_divisor={multiple} in the data preprocessor)')
        expected = (images.shape[0], 1, height, width)
        if label_map is not None and (tuple(label_map.shape) != expected
                                      or label_map.is_floating_point()):
            raise ValueError(f'DIFF expects label_map as an integer tensor of shape {expected} '
                             f'(B, 1, H, W like the images), got {tuple(label_map.shape)} '
                             f'{label_map.dtype}')
        if generator is not None and (not isinstance(generator, (list, tuple))
                                      or len(generator) != images.shape[0]):
            raise ValueError('DIFF expects generator=None or a list of one torch.Generator per '
                             f'image ({images.shape[0]}), got {generator!r}')


def _drop_frozen_state(module: nn.Module, state_dict: Dict, prefix: str, metadata) -> None:
    """state_dict post-hook: the extractor holds only frozen weights, reloaded from model_id."""
    for key in [k for k in state_dict if k.startswith(prefix)]:
        del state_dict[key]


def _remember_prefix(module: nn.Module, state_dict: Dict, prefix: str, *args) -> None:
    module._load_prefix = prefix


def _ignore_missing_frozen(module: nn.Module, incompatible_keys) -> None:
    """load_state_dict post-hook: frozen weights absent from a state dict are not missing."""
    prefix = getattr(module, '_load_prefix', '')
    incompatible_keys.missing_keys[:] = [
        k for k in incompatible_keys.missing_keys if not k.startswith(prefix)]
