"""The extractor against an independent, literal implementation of the release's algorithm.

The reference below follows docs/method.md §1.3-1.9 step by step: a VAE sample, the
ascending inversion with (2 + k) B conditioning rows, classifier-free guidance, one update per
branch with its own noise, per-pixel averaging inside the nearest-downsampled masks, ResNet
features from the unconditional rows and transformer features summed over all rows, laid out
per level as [ResNet j0..j2 | transformer j0..j2], each over the saved steps in list order.
Noise is drawn in the order the package documents (per step, per image, per branch).
"""
import math

import pytest
import torch
import torch.nn.functional as F
from diff_helpers import (SHORT, assert_close_to_magnitude, build_encoder, generators, images,
                          label_map)


def _reference(parts, config, x_images, labels, gens):
    unet, vae, scheduler = parts.unet, parts.vae, parts.scheduler
    batch = x_images.shape[0]
    latent = vae.encode(x_images).latent_dist.sample(generator=gens) * vae.config.scaling_factor
    present = set(torch.unique(labels).tolist()) if labels is not None else set()
    classes = sorted(c for c in config.label_prompts if c in present)
    texts = [config.negative_prompt, config.prompt] + [config.label_prompts[c] for c in classes]
    ids = parts.tokenizer(texts, padding='max_length', max_length=77, truncation=True,
                          return_tensors='pt').input_ids
    text = parts.text_encoder(ids).last_hidden_state.repeat_interleave(batch, 0)
    groups = len(texts)
    masks = [torch.ones(batch, 1, *latent.shape[-2:])] + [
        F.interpolate((labels == c).float(), size=latent.shape[-2:], mode='nearest')
        for c in classes]
    masks = torch.stack(masks)
    seq = sorted(config.timesteps)
    alphas = scheduler.alphas_cumprod
    res_keys = [tuple(k) for k in config.resnet_indices]
    ca_keys = [tuple(k) for k in config.transformer_indices]
    saved = {}
    x = latent
    for i, (t, t_next) in enumerate(zip([0] + seq[:-1], seq)):
        captured, handles = {}, []
        for kind, keys in (('res', res_keys), ('ca', ca_keys)):
            for b, j in keys:
                block = unet.up_blocks[b]
                module = block.resnets[j].conv2 if kind == 'res' else \
                    block.attentions[j].transformer_blocks[0]
                handles.append(module.register_forward_hook(
                    lambda m, inp, out, key=(kind, b, j): captured.__setitem__(key, out)))
        out = unet(x.repeat(groups, 1, 1, 1), t, encoder_hidden_states=text).sample
        for handle in handles:
            handle.remove()
        if i in config.saved_steps:
            for (kind, b, j), value in captured.items():
                if kind == 'res':
                    saved[(kind, b, j, i)] = value[:batch]
                else:
                    side = int(math.sqrt(value.shape[1] * x.shape[-1] / x.shape[-2]))
                    h = value.shape[1] // side
                    tokens = value.view(groups, batch, h, side, -1).sum(0)
                    saved[(kind, b, j, i)] = tokens.permute(0, 3, 1, 2)
        uncond = out[:batch]
        a, a_next = alphas[t], alphas[t_next]
        eta_i = config.eta if config.eta_min_timestep < t < config.eta_max_timestep else 0.0
        c1 = eta_i * ((1 - a_next / a) * (1 - a_next) / (1 - a)).sqrt()
        c2 = torch.clamp((1 - a_next) - c1 ** 2, min=1e-10).sqrt()
        if eta_i > 0:
            noise = torch.stack([torch.randn((groups - 1, *x.shape[1:]), generator=g)
                                 for g in gens], dim=1)
        branches = []
        for k in range(groups - 1):
            eps = uncond + config.guidance_scale * (out[(k + 1) * batch:(k + 2) * batch] - uncond)
            if config.unet_output == 'auto':
                eps = a.sqrt() * eps + (1 - a).sqrt() * x
            x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
            x_k = a_next.sqrt() * x0 + c2 * eps + (c1 * noise[k] if eta_i > 0 else 0)
            branches.append(x_k)
        x = (torch.stack(branches) * masks).sum(0) / masks.sum(0)
    levels = {}
    for block in sorted({b for b, _ in res_keys + ca_keys}, reverse=True):
        chunks = [saved[('res', b, j, i)] for b, j in res_keys if b == block
                  for i in config.saved_steps]
        chunks += [saved[('ca', b, j, i)] for b, j in ca_keys if b == block
                   for i in config.saved_steps]
        levels[8 * 2 ** (3 - block)] = torch.cat(chunks, dim=1)
    return levels


@pytest.mark.parametrize('optimize', [True, False])
@pytest.mark.parametrize('with_labels, unet_output', [(False, 'epsilon'), (True, 'epsilon'),
                                                      (True, 'auto')])
def test_extractor_equals_the_literal_release_algorithm(tiny_sd_dir, components, optimize,
                                                        with_labels, unet_output):
    encoder = build_encoder(tiny_sd_dir, components, optimize=optimize, unet_output=unet_output,
                            **SHORT)
    x = images(2, 64, 128)
    labels = label_map(2, 64, 128, [(0, 1, 0, 32, 0, 64), (1, 12, 16, 64, 40, 128),
                                    (1, 7, 0, 8, 0, 8)]) if with_labels else None
    config = encoder.config
    with torch.no_grad():
        expected = _reference(components, config, x, labels, generators(2))
    features = encoder.extractor(x, labels, generators(2))
    assert sorted(features) == sorted(expected) == [8, 16, 32, 64]
    for stride, value in expected.items():
        assert features[stride].shape == (2, value.shape[1], 64 // stride, 128 // stride)
        # Merged rows and reordered steps vs the literal loop round differently: 1e-4 of scale.
        assert_close_to_magnitude(features[stride], value, f'stride {stride}')
    changed = encoder.extractor(x, labels, generators(2, seed=3))[16]  # negative control
    assert (changed - expected[16]).abs().max() > 1e-2 * expected[16].abs().max()
