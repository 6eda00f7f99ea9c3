"""The original release's feature extraction, written out literally: the one reference.

It follows the project's docs/method.md §1.3-1.9 step by step, the way the release computes
it: a VAE sample; the ascending inversion over ALL configured timesteps, each step with
(2 + k) B conditioning rows (negative prompt, global prompt, one per prompted class present)
whose prompts are re-encoded at every call; classifier-free guidance; one update per branch
with its own noise; per-pixel averaging inside the nearest-downsampled class masks; the
release's per-step finiteness check; ResNet features from the unconditional rows and
transformer features summed over all rows, laid out per level as [ResNet layers |
transformer layers], each over the saved steps in list order. Every recorded level is
returned, stride 64 included (the release aggregated it and discarded the result).

Noise is drawn in the order the package documents (per step, per image, per branch), so with
the same generators :class:`~.extractor.DiffusionFeatureExtractor` must give the same
features to float rounding. The tests compare the two; ``tools/benchmark_backbone.py`` times
this function as the release's baseline. It is slow on purpose: nothing is skipped.
"""
import logging
import math
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .components import SDComponents
from .config import DIFFConfig

logger = logging.getLogger(__name__)


@torch.no_grad()
def release_features(parts: SDComponents, config: DIFFConfig, images: Tensor,
                     label_map: Optional[Tensor] = None,
                     generator: Optional[Sequence[torch.Generator]] = None
                     ) -> Dict[int, Tensor]:
    """The release's features of one batch: ``{stride: (B, channels, H / s, W / s)}``.

    Args:
        parts: The Stable Diffusion parts (the text encoder is used at every step).
        config: The DIFF configuration (only the method's keys are read).
        images: (B, 3, H, W) RGB in [-1, 1].
        label_map: Optional (B, 1, H, W) integer train ids: path control.
        generator: None (global RNG) or one ``torch.Generator`` per image.
    """
    unet, vae, scheduler = parts.unet, parts.vae, parts.scheduler
    batch = images.shape[0]
    latent = vae.encode(images).latent_dist.sample(generator=generator).float()
    x = latent * vae.config.scaling_factor
    present = set(torch.unique(label_map).tolist()) if label_map is not None else set()
    use_labels = label_map is not None and config.use_path_control
    classes = sorted(c for c in config.label_prompts if c in present) if use_labels else []
    alphas = scheduler.alphas_cumprod
    # unet_output 'auto' reads a v-prediction output as such; 'epsilon' as noise (released).
    v_prediction = (config.unet_output == 'auto'
                    and scheduler.config.prediction_type == 'v_prediction')
    resnets = [tuple(pair) for pair in config.resnet_indices]
    transformers = [tuple(pair) for pair in config.transformer_indices]
    ascending = sorted(config.timesteps)
    saved: Dict[tuple, Tensor] = {}
    for i, (t, t_next) in enumerate(zip([0] + ascending[:-1], ascending)):
        inside = config.path_control_min_timestep <= t <= config.path_control_max_timestep
        step_classes = classes if inside else []
        texts = [config.negative_prompt, config.prompt] + [config.label_prompts[c]
                                                          for c in step_classes]
        groups = len(texts)
        tokens = parts.tokenizer(texts, padding='max_length',
                                 max_length=parts.tokenizer.model_max_length, truncation=True,
                                 return_tensors='pt').input_ids
        tokens = tokens.to(next(parts.text_encoder.parameters()).device)
        text = parts.text_encoder(tokens).last_hidden_state.to(x.device)
        text = text.repeat_interleave(batch, 0)
        captured: Dict[tuple, Tensor] = {}
        handles = []
        for kind, pairs in (('res', resnets), ('ca', transformers)):
            for b, j in pairs:
                block = unet.up_blocks[b]
                module = (block.resnets[j].conv2 if kind == 'res'
                          else block.attentions[j].transformer_blocks[0])
                handles.append(module.register_forward_hook(
                    lambda m, inputs, out, key=(kind, b, j): captured.__setitem__(key, out)))
        try:
            out = unet(x.repeat(groups, 1, 1, 1), t, encoder_hidden_states=text).sample.float()
        finally:
            for handle in handles:
                handle.remove()
        if i in config.saved_steps:
            for (kind, b, j), value in captured.items():
                if kind == 'res':
                    saved[(kind, b, j, i)] = value[:batch].float()
                else:  # tokens (rows, h * w, C) of an h x w map with the latent's aspect
                    side = int(math.sqrt(value.shape[1] * x.shape[-1] / x.shape[-2]))
                    tokens_map = value.float().view(groups, batch, value.shape[1] // side,
                                                    side, -1).sum(0)
                    saved[(kind, b, j, i)] = tokens_map.permute(0, 3, 1, 2)
        x = _update(x, out, groups, batch, t, t_next, alphas, config, generator, label_map,
                    step_classes, v_prediction)
        if not torch.isfinite(x).all():  # the release's check, a host sync at every step
            logger.warning('non-finite latent at inversion step %d', i)
    return _levels(saved, resnets, transformers, config.saved_steps, images.shape[-1])


def _update(x: Tensor, out: Tensor, groups: int, batch: int, t: int, t_next: int,
            alphas: Tensor, config: DIFFConfig, generator, label_map: Optional[Tensor],
            classes: List[int], v_prediction: bool) -> Tensor:
    """One stochastic DDIM step per branch, then the branches averaged inside their masks."""
    a, a_next = alphas[t].to(x.device), alphas[t_next].to(x.device)
    eta = config.eta if config.eta_min_timestep < t < config.eta_max_timestep else 0.0
    c1 = eta * ((1 - a_next / a) * (1 - a_next) / (1 - a)).sqrt()
    c2 = torch.clamp((1 - a_next) - c1 ** 2, min=1e-10).sqrt()
    noise = None
    if eta > 0:
        if generator is None:
            noise = torch.randn((groups - 1, *x.shape), device=x.device)
        else:
            noise = torch.stack([torch.randn((groups - 1, *x.shape[1:]), generator=g,
                                             device=g.device) for g in generator],
                                dim=1).to(x.device)
    uncond = out[:batch]
    branches = []
    for k in range(groups - 1):
        eps = uncond + config.guidance_scale * (out[(k + 1) * batch:(k + 2) * batch] - uncond)
        if v_prediction:
            eps = a.sqrt() * eps + (1 - a).sqrt() * x
        x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
        branch = a_next.sqrt() * x0 + c2 * eps
        if noise is not None:
            branch = branch + c1 * noise[k]
        branches.append(branch)
    masks = [torch.ones_like(x[:, :1])]
    for c in classes:
        masks.append(F.interpolate((label_map == c).float(), size=x.shape[-2:], mode='nearest'))
    masks = torch.stack(masks)
    return (torch.stack(branches) * masks).sum(0) / masks.sum(0)


def _levels(saved: Dict[tuple, Tensor], resnets, transformers, saved_steps: Sequence[int],
            image_width: int) -> Dict[int, Tensor]:
    """Per up block, fine to coarse: [ResNets | transformers], each over the saved steps."""
    levels = {}
    for block in sorted({b for b, _ in resnets + transformers}, reverse=True):
        chunks = [saved[('res', b, j, i)] for b, j in resnets if b == block for i in saved_steps]
        chunks += [saved[('ca', b, j, i)] for b, j in transformers if b == block
                   for i in saved_steps]
        levels[image_width // chunks[0].shape[-1]] = torch.cat(chunks, dim=1)
    return levels


def release_extraction(extractor, tokenizer, text_encoder):
    """An ``extract`` with the extractor's signature that runs :func:`release_features` per
    trajectory on the extractor's own UNet, VAE and scheduler (the release's separate passes),
    and sets its ``last_usage`` from a hook on the UNet. For baselines: assign it to
    ``extractor.extract``.
    """
    from .trajectory import UNetUsage  # noqa: local import keeps the reference readable above
    parts = SDComponents(unet=extractor.unet, vae=extractor.vae, text_encoder=text_encoder,
                         tokenizer=tokenizer, scheduler=extractor.scheduler)

    def extract(trajectories, strides=None):
        rows: List[int] = []
        handle = extractor.unet.register_forward_pre_hook(
            lambda module, args: rows.append(args[0].shape[0]))
        try:
            with extractor.precision.autocast(trajectories[0].images.device):
                results = [release_features(parts, extractor.config, t.images, t.label_map,
                                            t.generator) for t in trajectories]
        finally:
            handle.remove()
        extractor.last_usage = UNetUsage(len(rows), tuple(rows))
        return [{s: f.float() for s, f in r.items() if strides is None or s in strides}
                for r in results]
    return extract
