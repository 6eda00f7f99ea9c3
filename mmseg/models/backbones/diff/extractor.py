"""Frozen Stable Diffusion as a feature extractor: VAE encode, stochastic inversion, hooks.

Design follows the DIFF release (arXiv 2406.00777; the project's docs/method.md §1), without
replacing any diffusers forward: features are read with forward hooks that are removed after
every eager UNet call (a compiled UNet keeps them until it is released, see compiled.py).
The extractor orchestrates; its pieces live in their own modules: the schedule and update
rule (inversion.py), the rows of each call (rows.py), the text conditioning (prompts.py), the
precision (precision.py), the compiled UNet (compiled.py), the state-dict handling
(frozen_state.py) and the input checks (trajectory.py). The release's own, unoptimised
computation is reference.py; the tests compare the two.
"""
import itertools
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import host_reads
from .compiled import CompiledUNet, call_unet
from .components import SDComponents
from .config import DIFFConfig
from .frozen_state import keep_out_of_state_dict
from .hooks import FeatureRecorder
from .inversion import (InversionStep, average_in_masks, build_inversion_steps,
                        inversion_update, v_to_epsilon)
from .layout import Level, describe_levels, latent_factor, size_multiple
from .precision import FrozenPrecision
from .prompts import TextConditioning, text_towers
from .rows import RowPlan, draw_step_noise, plan_rows
from .trajectory import Trajectory, UNetUsage, check_trajectories

__all__ = ['DiffusionFeatureExtractor', 'Trajectory', 'UNetUsage']


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


class DiffusionFeatureExtractor(nn.Module):
    """Multi-level UNet features of images, from a frozen Stable Diffusion.

    The frozen parts stay in eval mode, have ``requires_grad=False`` and are left out of
    ``state_dict()``; loading a state dict without them is not an error. Only work whose
    result is used is done (docs/differences.md §2): no UNet call after the last saved step,
    identical conditioning rows evaluated once, prompts embedded once at construction, no host
    synchronisation inside the inversion loop. The features equal the release's
    (:func:`~.reference.release_features`) to float rounding.

    Args:
        components: Loaded (or randomly built) Stable Diffusion parts.
        config: The DIFF configuration.
        compile_options: Keyword arguments of ``torch.compile`` for ``config.compile``
            (default: inductor; e.g. ``dict(backend='eager')`` to trace without a build).
    """

    def __init__(self, components: SDComponents, config: DIFFConfig,
                 compile_options: Optional[Dict[str, Any]] = None):
        super().__init__()
        self.config = config
        self.unet = components.unet.requires_grad_(False).eval()
        self.vae = components.vae.requires_grad_(False).eval()
        self.vae.decoder = None  # only the encoder is ever used
        self.scheduler = components.scheduler
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
        # Every prompt ever needed, each embedded once; the text encoders are not kept.
        prompts = [config.negative_prompt, config.prompt, *config.label_prompts.values()]
        self.prompts: List[str] = list(dict.fromkeys(prompts))
        if components.text_encoder is None:
            raise ValueError('DIFF needs the text encoder to embed its prompts (components.'
                             'text_encoder is None)')
        self.text = TextConditioning(text_towers(components), self.prompts, self.unet,
                                     self.latent_factor)
        # Frozen weights are held in the compute precision (cast once, not at every call).
        self.precision = FrozenPrecision(config.dtype, (self.unet, self.vae))
        self.compile_options = dict(compile_options or {})
        self._compiled: Optional[CompiledUNet] = None  # built at the first UNet call
        self.last_usage = UNetUsage(0, ())
        keep_out_of_state_dict(self)

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

    @property
    def held_dtype(self) -> torch.dtype:
        """The precision the frozen UNet and VAE are held in now (see precision.py)."""
        return self.precision.held_dtype

    def hold_precision(self, dtype: torch.dtype) -> None:
        """Hold the frozen UNet and VAE in ``dtype`` (features stay float32)."""
        self.precision.hold(dtype)

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

        Trajectories whose images have the same height and width run their rows in one UNet
        call per step (groups of other sizes run after each other); each keeps its own
        latents, rows, guidance, update and noise, so its features are those of a separate
        extraction. ``last_usage`` covers the whole extraction.

        Randomness is drawn trajectory by trajectory in the order given (VAE sample, then the
        inversion noise), as separate extractions in that order would draw it.

        Args:
            trajectories: What to extract; see :class:`Trajectory`.
            strides: Levels to return (default: all recorded levels).

        Returns:
            One ``{stride: (B, channels, H / stride, W / stride)}`` (float32) per trajectory.
        """
        trajectories = list(trajectories)
        check_trajectories(trajectories, self.size_multiple)
        levels = [lv for lv in self.levels if strides is None or lv.stride in strides]
        results: List[Optional[Dict[int, Tensor]]] = [None] * len(trajectories)
        rows: List[int] = []
        for group in self._size_groups(trajectories):
            features, group_rows = self._extract_group([trajectories[i] for i in group], levels)
            for index, feature in zip(group, features):
                results[index] = feature
            rows.extend(group_rows)
        self.last_usage = UNetUsage(len(rows), tuple(rows))
        return results

    @staticmethod
    def _size_groups(trajectories: Sequence[Trajectory]) -> List[List[int]]:
        """Indices of the trajectories that share UNet calls: those of one image size."""
        groups: Dict[Tuple[int, int], List[int]] = {}
        for index, trajectory in enumerate(trajectories):
            groups.setdefault(tuple(trajectory.images.shape[-2:]), []).append(index)
        return list(groups.values())

    def _extract_group(self, trajectories: Sequence[Trajectory], levels: Sequence[Level]
                       ) -> Tuple[List[Dict[int, Tensor]], List[int]]:
        """One inversion over trajectories of one size; returns features and rows per call.

        It stops at the UNet call of the last saved step (no update after it).
        """
        steps = self.steps[:max(self.config.saved_steps) + 1]
        runs = []
        for trajectory, latent_dist in zip(trajectories, self._encode(trajectories)):
            runs.append(self._start_run(trajectory, latent_dist, steps, levels))
        self._invert(steps, runs, levels)
        rows = [sum(run.plans[step.index].num_groups * run.batch for run in runs)
                for step in steps]
        return [run.features for run in runs], rows

    def _encode(self, trajectories: Sequence[Trajectory]) -> List:
        """The VAE's latent distribution of every trajectory, from one VAE call.

        An image tensor given to several trajectories (the same object) is encoded once.
        """
        unique: Dict[int, Tensor] = {}
        for trajectory in trajectories:
            unique.setdefault(id(trajectory.images), trajectory.images)
        with self.precision.autocast(trajectories[0].images.device):
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
                   levels: Sequence[Level]) -> _Run:
        """Sample the trajectory's latent, plan its rows and draw its noise (in that order)."""
        images, generator = trajectory.images, trajectory.generator
        with self.precision.autocast(images.device):
            x = latent_dist.sample(generator=generator).float() * self.vae.config.scaling_factor
        classes = self._present_classes(trajectory.label_map)
        plans = [plan_rows(self._branch_classes(step, classes), self.config, self.prompts)
                 for step in steps]
        return _Run(
            x=x, plans=plans,
            noise=draw_step_noise(steps[:-1], plans, x.shape, generator, images.device),
            masks=self._latent_masks(trajectory.label_map, classes, x.shape[-2:]),
            features={lv.stride: x.new_empty(x.shape[0], lv.channels, *self._size(lv, x))
                      for lv in levels})

    def _invert(self, steps: Sequence[InversionStep], runs: Sequence[_Run],
                levels: Sequence[Level]) -> None:
        """The inversion loop of every run; writes the saved steps' features into the runs."""
        saved = {step: position for position, step in enumerate(self.config.saved_steps)}
        for step in steps:
            record = levels if step.index in saved else []
            plans = [run.plans[step.index] for run in runs]
            inputs = [run.x.repeat(plan.num_groups, 1, 1, 1) for run, plan in zip(runs, plans)]
            prompt_rows = [index for run, plan in zip(runs, plans)
                           for index in plan.prompt_indices for _ in range(run.batch)]
            latents = _cat(inputs)
            out, recorded = self._unet_step(latents, step, self.text.unet_kwargs(prompt_rows,
                                                                                 latents), record)
            sizes = [rows.shape[0] for rows in inputs]
            outs = out.split(sizes)
            parts = {key: value.split(sizes) for key, value in recorded.items()}
            for index, (run, plan) in enumerate(zip(runs, plans)):
                own = {key: value[index] for key, value in parts.items()}
                for level in record:
                    self._store(run.features[level.stride], level, own, plan, saved[step.index])
            if step is steps[-1]:
                break  # no update after the last UNet call
            for run, plan, rows in zip(runs, plans, outs):
                eps = self._guided_eps(rows, run.x, plan, step)
                branches = inversion_update(run.x, eps, step, run.noise.get(step.index))
                run.x = branches[0] if plan.num_branches == 1 else average_in_masks(
                    branches, run.masks[:plan.num_branches])

    def _unet_step(self, inputs: Tensor, step: InversionStep, conditioning: Mapping[str, Any],
                   levels: Sequence[Level]) -> Tuple[Tensor, Dict]:
        """One UNet call over all rows; returns its float32 output and the recorded outputs.

        ``inputs`` holds one latent per row, ``conditioning`` the UNet's keyword arguments
        for those rows (:meth:`TextConditioning.unet_kwargs`).
        """
        timestep = self.unet_timesteps[step.index]
        if self.config.compile:
            if self._compiled is None:
                self._compiled = CompiledUNet(self.unet, self._hooked(self.levels),
                                              self.compile_options)
            with self.precision.autocast(inputs.device):
                out, recorded = self._compiled(inputs, timestep, conditioning)
            return out.float(), recorded
        with FeatureRecorder(self._hooked(levels)) as recorder, \
                self.precision.autocast(inputs.device):
            out = call_unet(self.unet, inputs, timestep, conditioning)
        return out.float(), recorder.features

    def _hooked(self, levels: Sequence[Level]) -> List[Tuple[Any, nn.Module]]:
        return [(layer.key, layer.module(self.unet)) for lv in levels for layer in lv.layers]

    def release_compiled(self) -> None:
        """Detach the hooks of the compiled UNet and drop it (before handing the same UNet
        to another extractor); the next call compiles again."""
        if self._compiled is not None:
            self._compiled.close()
            self._compiled = None

    def _guided_eps(self, out: Tensor, x: Tensor, plan: RowPlan, step: InversionStep) -> Tensor:
        """Classifier-free guided noise prediction of every branch of one run, (P, B, ...).

        ``out`` holds the run's rows of the UNet output, row group by row group.
        """
        out = out.view(plan.num_groups, *x.shape)
        uncond = out[plan.uncond_group]
        # Rows are picked with Python indices: an index tensor would be a host-to-device copy.
        cond = torch.stack([out[group] for group in plan.branch_groups])
        eps = uncond + self.config.guidance_scale * (cond - uncond)
        if self._v_prediction:
            eps = v_to_epsilon(eps, x, step)
        return eps

    def _store(self, target: Tensor, level: Level, recorded: Dict, plan: RowPlan,
               position: int) -> None:
        """Write the level's features of one saved step into their channel slots."""
        batch, height, width = target.shape[0], target.shape[2], target.shape[3]
        for index, layer in enumerate(level.layers):
            output = recorded[layer.key]
            if layer.kind == 'resnet':  # the unconditional rows only
                groups = output.reshape(plan.num_groups, batch, *output.shape[1:])
                value = groups[plan.uncond_group]
            else:  # summed over every conditioning row; a merged row counts as many times
                tokens = output.float().reshape(plan.num_groups, batch, height, width, -1)
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
            return torch.ones(1, 1, 1, *size, device=self.unet_timesteps.device)
        shape = (label_map.shape[0], 1, *size)
        masks = [torch.ones(shape, device=label_map.device)]
        for c in classes:
            masks.append(F.interpolate((label_map == c).float(), size=size, mode='nearest'))
        return torch.stack(masks)
