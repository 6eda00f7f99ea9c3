"""DIFFEncoder on the tiny model: shapes, layout, randomness, bad input, frozen parts."""
import pytest
import torch
from diff_helpers import (SHORT, assert_close_to_magnitude, build_encoder, diff, generators,
                          images, label_map)

# Tiny UNet up-block widths (32, 32, 16, 8); 3 ResNets per block, transformers in blocks 1-3.
TINY_LEVEL_CHANNELS = {8: 3 * 8 + 3 * 8, 16: 3 * 16 + 3 * 16, 32: 3 * 32 + 3 * 32, 64: 3 * 32}


@pytest.mark.parametrize('height, width', [(64, 64), (128, 192)])
def test_output_shapes_and_level_channels(tiny_sd_dir, components, height, width):
    encoder = build_encoder(tiny_sd_dir, components, **SHORT)
    assert encoder.out_strides == (4, 8, 16, 32)
    assert encoder.out_channels == (32, 64, 128, 128)
    with torch.no_grad():
        outputs = encoder(images(2, height, width), generator=generators(2))
    for out, stride, channels in zip(outputs, encoder.out_strides, encoder.out_channels):
        assert out.shape == (2, channels, height // stride, width // stride)
        assert out.dtype == torch.float32
    steps = len(SHORT['saved_steps'])
    assert {lv.stride: lv.channels for lv in encoder.extractor.levels} == {
        s: steps * c for s, c in TINY_LEVEL_CHANNELS.items()}


def test_channel_order_follows_saved_steps(tiny_sd_dir, components):
    """Within a layer, channels come in the order of ``saved_steps``."""
    forward = build_encoder(tiny_sd_dir, components, timesteps=SHORT['timesteps'],
                            saved_steps=[4, 1]).extractor
    backward = build_encoder(tiny_sd_dir, components, timesteps=SHORT['timesteps'],
                             saved_steps=[1, 4]).extractor
    x = images(1)
    a = forward(x, generator=generators(1))[16]
    b = backward(x, generator=generators(1))[16]
    level = forward.levels[1]
    for index, layer in enumerate(level.layers):
        first, second = level.offset(index, 0), level.offset(index, 1)
        width = layer.channels
        torch.testing.assert_close(a[:, first:first + width], b[:, second:second + width])
        torch.testing.assert_close(a[:, second:second + width], b[:, first:first + width])


def test_generators_make_features_reproducible_and_per_image(tiny_sd_dir, components):
    encoder = build_encoder(tiny_sd_dir, components, **SHORT)
    x = images(2)
    with torch.no_grad():
        first = encoder(x, generator=generators(2, seed=5))
        again = encoder(x, generator=generators(2, seed=5))
        other = encoder(x, generator=generators(2, seed=9))
        alone = encoder(x[1:], generator=generators(1, seed=6))  # image 1, its own generator
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    for stride, batched, single, changed in zip(encoder.out_strides, first, alone, other):
        scale = float(single.abs().max())
        # Batch of 2 vs batch of 1 rounds differently (CPU- and thread-dependent): 1e-4 of scale.
        assert_close_to_magnitude(batched[1:], single, f'stride {stride}')
        # Negative control: another image-1 generator moves the features far beyond that.
        assert (changed[1:] - single).abs().max() > 100 * 1e-4 * scale


def test_label_map_changes_features_only_through_prompted_classes(tiny_sd_dir, components):
    encoder = build_encoder(tiny_sd_dir, components, **SHORT)
    x = images(1)
    unprompted = label_map(1, 64, 64, [(0, 0, 0, 64, 0, 64)])  # road: no prompt
    prompted = label_map(1, 64, 64, [(0, 1, 0, 32, 0, 64)])
    with torch.no_grad():
        plain = encoder(x, generator=generators(1))
        same = encoder(x, unprompted, generators(1))
        steered = encoder(x, prompted, generators(1))
    assert all(torch.equal(a, b) for a, b in zip(plain, same))
    assert encoder.last_usage.rows == (2,) * 5
    assert not torch.allclose(plain[0], steered[0])
    off = build_encoder(tiny_sd_dir, components, use_path_control=False, **SHORT)
    with torch.no_grad():
        ignored = off(x, prompted, generators(1))
    assert off.last_usage.rows == (1,) * 5
    assert all(torch.equal(a, b) for a, b in zip(plain, ignored))


def test_path_control_window(tiny_sd_dir, components):
    """Branches only at steps whose timestep is inside [min, max] (inclusive)."""
    encoder = build_encoder(tiny_sd_dir, components, path_control_min_timestep=11,
                            path_control_max_timestep=14, **SHORT)
    with torch.no_grad():
        encoder(images(1), label_map(1, 64, 64, [(0, 1, 0, 32, 0, 64)]), generators(1))
    # UNet timesteps of the short schedule: 0, 4, 8, 11, 14.
    assert encoder.last_usage.rows == (1, 1, 1, 2, 2)


def test_masks_are_downsampled_nearest(tiny_sd_dir, components):
    extractor = build_encoder(tiny_sd_dir, components, **SHORT).extractor
    labels = label_map(1, 64, 64, [(0, 1, 0, 64, 0, 20), (0, 12, 40, 64, 40, 64)])
    masks = extractor._latent_masks(labels, [1, 12], (8, 8))
    assert masks.shape == (3, 1, 1, 8, 8)
    assert torch.equal(masks[0], torch.ones(1, 1, 8, 8))
    expected = torch.zeros(8, 8)
    expected[:, :3] = 1  # nearest picks source pixels 0, 8, 16 (< 20)
    assert torch.equal(masks[1, 0, 0], expected)
    expected = torch.zeros(8, 8)
    expected[5:, 5:] = 1  # source pixels 40, 48, 56
    assert torch.equal(masks[2, 0, 0], expected)


@pytest.mark.parametrize('make_input, match', [
    (lambda: (images(1, 64, 100), None, None), 'multiples of 64, got 64x100'),
    (lambda: (images(1)[:, :2], None, None),
     r'\(B, 3, H, W\)'),
    (lambda: (images(2), torch.zeros(2, 64, 64, dtype=torch.long), None), 'label_map'),
    (lambda: (images(1), torch.zeros(1, 1, 64, 64), None), 'integer'),
    (lambda: (images(2), None, generators(1)), 'one torch.Generator per image'),
])
def test_bad_input_is_one_clear_error(tiny_sd_dir, components, make_input, match):
    encoder = build_encoder(tiny_sd_dir, components, **SHORT)
    x, labels, gens = make_input()
    with pytest.raises(ValueError, match=match):
        encoder(x, labels, gens)


def test_frozen_parts_get_no_gradient_and_stay_in_eval(tiny_sd_dir, components):
    encoder = build_encoder(tiny_sd_dir, components, **SHORT)
    encoder.train()
    assert not encoder.extractor.training and not encoder.extractor.unet.training
    assert encoder.finecoder.training
    frozen = list(encoder.extractor.parameters())
    assert frozen and not any(p.requires_grad for p in frozen)
    trainable = dict(encoder.named_trainable_parameters())
    assert trainable and all(n.startswith(('aggregation.', 'finecoder.')) for n in trainable)
    x = images(1).requires_grad_(True)
    sum(o.sum() for o in encoder(x, generator=generators(1))).backward()
    assert all(p.grad is None for p in frozen) and x.grad is None
    assert all(p.grad is not None for p in trainable.values())


def test_state_dict_holds_only_trainable_weights(tiny_sd_dir, components):
    encoder = build_encoder(tiny_sd_dir, components, **SHORT)
    state = encoder.state_dict()
    assert set(state) == set(dict(encoder.named_trainable_parameters()))
    other = build_encoder(tiny_sd_dir, components, seed=1, **SHORT)
    assert other.load_state_dict(state, strict=True).missing_keys == []
    assert all(torch.equal(v, other.state_dict()[k]) for k, v in state.items())
    wrapper = torch.nn.ModuleDict(dict(backbone=other))  # nested: prefixes still handled
    assert all(k.startswith('backbone.') for k in wrapper.state_dict())
    wrapper.load_state_dict(wrapper.state_dict(), strict=True)
    incomplete = dict(state)
    incomplete.pop('finecoder.fuse4.upsample.weight')
    with pytest.raises(RuntimeError, match='finecoder.fuse4.upsample.weight'):
        other.load_state_dict(incomplete, strict=True)


def test_hooks_are_removed_and_read_the_residual_branch(tiny_sd_dir, components):
    encoder = build_encoder(tiny_sd_dir, components, **SHORT)
    resnet = components.unet.up_blocks[2].resnets[1]
    seen = {}
    handle = resnet.register_forward_hook(
        lambda module, inputs, output: seen.update(inputs=inputs[0], output=output))
    recorder = diff.hooks.FeatureRecorder([('conv2', resnet.conv2)])
    with recorder, torch.no_grad():
        assert recorder.active
        components.unet(torch.randn(1, 4, 8, 8), 5,
                        encoder_hidden_states=encoder.extractor.text.hidden_states[:1])
    handle.remove()
    assert not recorder.active
    # conv2's output is the residual branch: output * scale - shortcut(input).
    branch = seen['output'] * resnet.output_scale_factor - resnet.conv_shortcut(seen['inputs'])
    # Recomputed as output * scale - shortcut: different float arithmetic, 1e-4 of the scale.
    assert_close_to_magnitude(recorder.features['conv2'], branch, 'conv2')
    with torch.no_grad():
        encoder(images(1), generator=generators(1))
    assert not any(m._forward_hooks for m in components.unet.modules())


def test_layer_indices_outside_the_unet_are_config_errors(tiny_sd_dir, components):
    with pytest.raises(diff.ConfigError, match="'transformer_indices'.*no attentions"):
        build_encoder(tiny_sd_dir, components, transformer_indices=[[0, 0]], **SHORT)
    with pytest.raises(diff.ConfigError, match="'resnet_indices'.*3 resnet"):
        build_encoder(tiny_sd_dir, components, resnet_indices=[[1, 3]], **SHORT)
    with pytest.raises(diff.ConfigError, match='strides'):
        build_encoder(tiny_sd_dir, components, resnet_indices=[[0, 0]],
                      transformer_indices=[[1, 0]], **SHORT)
