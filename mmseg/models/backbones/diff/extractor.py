"""Frozen Stable Diffusion as a feature extractor: VAE encode, stochastic inversion, hooks.

Design follows the DIFF release (arXiv 2406.00777; the project's docs/method.md §1), without
replacing any diffusers forward: features are read with forward hooks that are removed after
every UNet call.
"""
import contextlib
import itertools
import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import host_reads
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
# Keyword arguments of torch.compile for ``compile: true`` (default: inductor). Tests set
# backend='eager' to trace the same graphs without inductor's minutes-long C++ build.
COMPILE_OPTIONS: Dict[str, Any] = {}


@dataclass(frozen=True)
class UNetUsage:
    """UNet work of the latest forward: the number of calls and the batch rows of each."""

    calls: int
    rows: Tuple[int, ...]


@dataclass(frozen=True, eq=False)
class Trajectory:
    """One inversion of a batch of images, with or without path control.

    Several trajectories at the same image size share their UNet calls in
    :meth:`DiffusionFeatureExtractor.extract`; each still gets exactly the features of its own
    separate extraction.

    Attributes:
        images: (B, 3, H, W) RGB in [-1, 1]; H and W multiples of ``size_multiple``.
        label_map: Optional (B, 1, H, W) integer train ids (255 = ignore): path control for
            the prompted classes present anywhere in THIS trajectory's batch.
        generator: None (global RNG) or one ``torch.Generator`` per image. Give each
            trajectory generators of its own: one shared by two trajectories would be drawn
            from in a different order than by separate extractions.
    """

    images: Tensor
    label_map: Optional[Tensor] = None
    generator: Optional[Sequence[torch.Generator]] = None


@dataclass(eq=False)
class _Run:
    """Mutable state of one trajectory during the inversion."""

    x: Tensor  # the current latent, (B, C, h, w)
    plans: List[RowPlan]  # rows of each step
    noise: Dict[int, Tensor]  # fresh noise of each stochastic update
    masks: Tensor  # (1 + k, B, 1, h, w) branch masks
    features: Dict[int, Tensor]  # output: stride -> (B, channels, h', w')

    @property
    def batch(self) -> int:
        return self.x.shape[0]


def _cat(tensors: Sequence[Tensor]) -> Tensor:
    """Concatenate along the batch (rows) dimension; one tensor is returned as is."""
    return tensors[0] if len(tensors) == 1 else torch.cat(list(tensors))


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
        # config.compile: built at the first UNet call (see _compiled_unet_call).
        self._compiled = None
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
        """Features per stride of one trajectory (see :meth:`extract`).

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
        return self.extract([Trajectory(images, label_map, generator)], strides)[0]

    @torch.no_grad()
    def extract(self, trajectories: Sequence[Trajectory],
                strides: Optional[Sequence[int]] = None) -> List[Dict[int, Tensor]]:
        """Features of several trajectories, sharing one UNet call per inversion step.

        With ``optimize: true``, trajectories whose images have the same height and width run
        their rows in one UNet call per step (groups of other sizes run after each other);
        each keeps its own latents, rows, guidance, update and noise, so its features are
        those of a separate extraction. With ``optimize: false`` every trajectory runs alone,
        as released. ``last_usage`` covers the whole extraction.

        Randomness is drawn trajectory by trajectory in the order given (VAE sample, then the
        inversion noise), as separate extractions in that order would draw it.

        Args:
            trajectories: What to extract; see :class:`Trajectory`.
            strides: Levels to return (default: all recorded levels).

        Returns:
            One ``{stride: (B, channels, H / stride, W / stride)}`` (float32) per trajectory.
        """
        trajectories = list(trajectories)
        if not trajectories:
            raise ValueError('DIFF extract: expected at least one Trajectory, got none')
        for trajectory in trajectories:
            if not isinstance(trajectory, Trajectory):
                raise ValueError(f'DIFF extract: expected Trajectory objects, got '
                                 f'{type(trajectory).__name__}')
            self._check_inputs(trajectory.images, trajectory.label_map, trajectory.generator)
        levels = [lv for lv in self.levels if strides is None or lv.stride in strides]
        results: List[Optional[Dict[int, Tensor]]] = [None] * len(trajectories)
        rows: List[int] = []
        for group in self._merge_groups(trajectories):
            features, group_rows = self._extract_group([trajectories[i] for i in group], levels)
            for index, feature in zip(group, features):
                results[index] = feature
            rows.extend(group_rows)
        self.last_usage = UNetUsage(len(rows), tuple(rows))
        return results

    def _merge_groups(self, trajectories: Sequence[Trajectory]) -> List[List[int]]:
        """Indices of the trajectories that share UNet calls: same image size (optimised)."""
        if not self.config.optimize:
            return [[index] for index in range(len(trajectories))]
        groups: Dict[Tuple[int, int], List[int]] = {}
        for index, trajectory in enumerate(trajectories):
            groups.setdefault(tuple(trajectory.images.shape[-2:]), []).append(index)
        return list(groups.values())

    def _extract_group(self, trajectories: Sequence[Trajectory], levels: Sequence[Level]
                       ) -> Tuple[List[Dict[int, Tensor]], List[int]]:
        """One inversion over trajectories of one size; returns features and rows per call."""
        # The optimised path stops at the UNet call of the last saved step.
        last = max(self.config.saved_steps) if self.config.optimize else len(self.steps) - 1
        steps = self.steps[:last + 1]
        updates = steps[:-1] if self.config.optimize else steps
        runs = []
        for trajectory, latent_dist in zip(trajectories, self._encode(trajectories)):
            runs.append(self._start_run(trajectory, latent_dist, steps, updates, levels))
        embeddings = self._prompt_embeddings([plan for run in runs for plan in run.plans])
        self._invert(steps, runs, embeddings, levels)
        rows = [sum(run.plans[step.index].num_rows * run.batch for run in runs)
                for step in steps]
        return [run.features for run in runs], rows

    def _encode(self, trajectories: Sequence[Trajectory]) -> List:
        """The VAE's latent distribution of every trajectory, from one VAE call.

        An image tensor given to several trajectories (the same object) is encoded once.
        """
        unique: Dict[int, Tensor] = {}
        for trajectory in trajectories:
            unique.setdefault(id(trajectory.images), trajectory.images)
        with self.autocast(trajectories[0].images.device):
            merged = self.vae.encode(_cat(list(unique.values()))).latent_dist
        if len(trajectories) == 1:
            return [merged]
        sizes = [images.shape[0] for images in unique.values()]
        starts = dict(zip(unique, itertools.accumulate(sizes, initial=0)))
        # Each slice is a distribution of its own, so each trajectory samples from it alone.
        return [type(merged)(merged.parameters[starts[id(t.images)]:
                                               starts[id(t.images)] + t.images.shape[0]])
                for t in trajectories]

    def _start_run(self, trajectory: Trajectory, latent_dist, steps: Sequence[InversionStep],
                   updates: Sequence[InversionStep], levels: Sequence[Level]) -> _Run:
        """Sample the trajectory's latent, plan its rows and draw its noise (in that order)."""
        images, generator = trajectory.images, trajectory.generator
        with self.autocast(images.device):
            x = latent_dist.sample(generator=generator).float() * self.vae.config.scaling_factor
        classes = self._present_classes(trajectory.label_map)
        plans = [plan_rows(self._branch_classes(step, classes), self.config, self.prompts,
                           deduplicate=self.config.optimize) for step in steps]
        return _Run(
            x=x, plans=plans,
            noise=draw_step_noise(updates, plans, x.shape, generator, images.device),
            masks=self._latent_masks(trajectory.label_map, classes, x.shape[-2:]),
            features={lv.stride: x.new_empty(x.shape[0], lv.channels, *self._size(lv, x))
                      for lv in levels})

    def _invert(self, steps: Sequence[InversionStep], runs: Sequence[_Run],
                embeddings: Dict[int, Tensor], levels: Sequence[Level]) -> None:
        """The inversion loop of every run; writes the saved steps' features into the runs."""
        saved = {step: position for position, step in enumerate(self.config.saved_steps)}
        optimize = self.config.optimize
        # The optimised path makes no update after its last UNet call.
        num_updates = len(steps) - 1 if optimize else len(steps)
        for step in steps:
            record = levels if step.index in saved else []
            plans = [run.plans[step.index] for run in runs]
            inputs = [run.x.repeat(plan.num_rows, 1, 1, 1) for run, plan in zip(runs, plans)]
            text = [torch.stack([embeddings[i] for i in plan.prompt_indices]).repeat_interleave(
                run.batch, dim=0) for run, plan in zip(runs, plans)]
            out, recorded = self._unet_step(_cat(inputs), step, _cat(text), record)
            sizes = [rows.shape[0] for rows in inputs]
            outs = out.split(sizes)
            parts = {key: value.split(sizes) for key, value in recorded.items()}
            for index, (run, plan) in enumerate(zip(runs, plans)):
                own = {key: value[index] for key, value in parts.items()}
                for level in record:
                    self._store(run.features[level.stride], level, own, plan, saved[step.index])
            if step.index >= num_updates:
                break
            for run, plan, rows in zip(runs, plans, outs):
                eps = self._guided_eps(rows, run.x, plan, step)
                branches = inversion_update(run.x, eps, step, run.noise.get(step.index))
                run.x = branches[0] if optimize and plan.num_branches == 1 else average_in_masks(
                    branches, run.masks[:plan.num_branches])
                if not optimize and not torch.isfinite(run.x).all():  # the release's check
                    logger.warning('non-finite latent at inversion step %d', step.index)

    def _unet_step(self, inputs: Tensor, step: InversionStep, embeddings: Tensor,
                   levels: Sequence[Level]) -> Tuple[Tensor, Dict]:
        """One UNet call over all rows; returns its float32 output and the recorded outputs.

        ``inputs`` and ``embeddings`` hold one latent and one prompt embedding per row.
        """
        if self.config.compile:
            with self.autocast(inputs.device):
                out = self._compiled_unet_call(inputs, self.unet_timesteps[step.index],
                                               embeddings)
            return out.float(), dict(self._compiled[1].features)
        modules = [(layer.key, layer.module(self.unet)) for lv in levels for layer in lv.layers]
        with FeatureRecorder(modules) as recorder, self.autocast(inputs.device):
            out = self.unet(inputs, self.unet_timesteps[step.index],
                            encoder_hidden_states=embeddings, return_dict=False)[0]
        return out.float(), recorder.features

    def _compiled_unet_call(self, inputs: Tensor, timestep: Tensor, embeddings: Tensor) -> Tensor:
        """The UNet through ``torch.compile`` (``config.compile``), built at the first call.

        The hooks of every recorded layer stay attached while compiled (they are part of the
        compiled graph; adding and removing them per call would recompile), so each call
        records all levels. The row dimension is marked dynamic: a different number of rows
        (prompted classes k, batch size) does not compile again. The spatial size is static:
        each new image size compiles once.
        """
        if self._compiled is None:
            recorder = FeatureRecorder([(layer.key, layer.module(self.unet))
                                        for lv in self.levels for layer in lv.layers])
            recorder.__enter__()  # hooks stay for the lifetime of the extractor
            self._compiled = (torch.compile(_call_unet, **COMPILE_OPTIONS), recorder)
        for tensor in (inputs, embeddings):
            torch._dynamo.maybe_mark_dynamic(tensor, 0)
        return self._compiled[0](self.unet, inputs, timestep, embeddings)

    def release_compiled(self) -> None:
        """Detach the hooks of the compiled path from the UNet and drop the compiled function
        (before handing the same UNet to another extractor); the next call compiles again."""
        if self._compiled is not None:
            self._compiled[1].__exit__(None, None, None)
            self._compiled = None

    def _guided_eps(self, out: Tensor, x: Tensor, plan: RowPlan, step: InversionStep) -> Tensor:
        """Classifier-free guided noise prediction of every branch of one run, (P, B, ...).

        ``out`` holds the run's rows of the UNet output, row group by row group.
        """
        out = out.view(plan.num_rows, *x.shape)
        uncond = out[plan.uncond_row]
        # Rows are picked with Python indices: an index tensor would be a host-to-device copy.
        cond = torch.stack([out[row] for row in plan.branch_rows])
        eps = uncond + self.config.guidance_scale * (cond - uncond)
        if self._v_prediction:
            eps = v_to_epsilon(eps, x, step)
        return eps

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
        present = set(host_reads.distinct_values('label_classes', label_map))
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


def _call_unet(unet: nn.Module, inputs: Tensor, timestep: Tensor, embeddings: Tensor) -> Tensor:
    """The UNet's noise prediction (the function ``torch.compile`` compiles)."""
    return unet(inputs, timestep, encoder_hidden_states=embeddings, return_dict=False)[0]


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
