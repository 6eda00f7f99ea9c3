"""Aggregation and finecoder: structure, initialisation, hand-checked forward, full-size counts."""
import pytest
import torch
import torch.nn.functional as F
from diff_helpers import SHORT, build_encoder, diff, generators, images

from diff.architectures import SD21, build_random_components
from diff.layout import Layer, Level


def test_bottleneck_block_by_hand():
    torch.manual_seed(0)
    block = diff.BottleneckBlock(48, 16, 32, norm_groups=16)
    convs = [m for m in block.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 4 and all(c.bias is None for c in convs)
    assert all(m.num_groups == 16 for m in block.modules() if isinstance(m, torch.nn.GroupNorm))
    x = torch.randn(2, 48, 5, 6)

    def conv_norm(seq, value):
        conv, norm = seq
        return F.group_norm(F.conv2d(value, conv.weight, padding=conv.padding), 16,
                            norm.weight, norm.bias)
    out = F.relu(conv_norm(block.conv1, x))
    out = F.relu(conv_norm(block.conv2, out))
    expected = F.relu(conv_norm(block.conv3, out) + conv_norm(block.shortcut, x))
    torch.testing.assert_close(block(x), expected)


def test_msra_initialisation():
    torch.manual_seed(0)
    block = diff.BottleneckBlock(512, 256, 1024, norm_groups=16)
    weight = block.shortcut[0].weight  # fan_out = 1024
    assert weight.std().item() == pytest.approx((2 / 1024) ** 0.5, rel=0.02)
    assert abs(weight.mean().item()) < 1e-3
    for norm in (m for m in block.modules() if isinstance(m, torch.nn.GroupNorm)):
        assert torch.equal(norm.weight, torch.ones_like(norm.weight))
        assert torch.equal(norm.bias, torch.zeros_like(norm.bias))


def _level():
    layers = (Layer('resnet', 1, 0, 8), Layer('resnet', 1, 1, 16), Layer('transformer', 1, 0, 8))
    return Level(block=1, stride=32, scale=4, layers=layers, num_steps=3)


def test_mixing_reads_each_layer_and_step_from_its_own_channels():
    torch.manual_seed(0)
    level = _level()
    mixing = diff.MixingAggregation([level], {32: 32}, bottleneck_ratio=2, norm_groups=8)
    assert level.channels == 3 * 32
    x = torch.randn(2, level.channels, 3, 4)
    weights = torch.softmax(mixing.mixing_weights['stride32'], 0)
    assert weights.sum().item() == pytest.approx(1.0) and torch.allclose(weights, weights[0])
    with torch.no_grad():
        mixing.mixing_weights['stride32'].copy_(torch.randn(9))
        weights = torch.softmax(mixing.mixing_weights['stride32'], 0)
        expected = 0
        for index, (layer, block) in enumerate(zip(level.layers, mixing.blocks['stride32'])):
            for step in range(3):
                start = level.offset(index, step)
                chunk = x[:, start:start + layer.channels]
                expected = expected + weights[index * 3 + step] * block(chunk)
        out = mixing({32: x})[32]
    assert out.shape == (2, 32, 3, 4)
    # One fused sum vs a Python loop of weighted terms: 1e-5 of the output's scale.
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5 * float(expected.abs().max()))


def test_mixing_encoder_runs(tiny_sd_dir, components):
    encoder = build_encoder(tiny_sd_dir, components, aggregation_type='mixing', **SHORT)
    assert set(encoder.aggregation.mixing_weights) == {'stride8', 'stride16', 'stride32'}
    with torch.no_grad():
        outputs = encoder(images(1), generator=generators(1))
    assert [o.shape[1] for o in outputs] == list(encoder.out_channels)


def test_finecoder_structure_and_outputs():
    torch.manual_seed(0)
    finecoder = diff.Finecoder([64, 128, 256], stride4_channels=32, norm_groups=32)
    up = finecoder.fuse16.upsample
    assert (up.kernel_size, up.stride, up.padding) == ((4, 4), (2, 2), (1, 1))
    assert torch.equal(up.bias, torch.zeros_like(up.bias))
    x8, x16, x32 = torch.randn(1, 64, 16, 16), torch.randn(1, 128, 8, 8), torch.randn(1, 256, 4, 4)
    with torch.no_grad():
        x4, y8, y16, y32 = finecoder(x8, x16, x32)
    assert x4.shape == (1, 32, 32, 32)
    torch.testing.assert_close(y8, F.group_norm(x8, 32))
    torch.testing.assert_close(y32, F.group_norm(x32, 32))


def test_full_sd21_feature_widths_and_parameter_counts():
    """The full SD 2.1 architecture (shapes only, on the meta device) at the released settings."""
    parts = build_random_components(SD21, device=torch.device('meta'))
    with torch.device('meta'):
        encoder = diff.DIFFEncoder(diff.DIFFConfig(model_id='unused'), parts)
    widths = {level.stride: level.channels for level in encoder.extractor.levels}
    assert widths == {8: 17_280, 16: 34_560, 32: 69_120, 64: 34_560}
    assert encoder.out_channels == (256, 512, 1024, 2048)
    aggregation = sum(p.numel() for p in encoder.aggregation.parameters())
    finecoder = sum(p.numel() for p in encoder.finecoder.parameters())
    assert aggregation == pytest.approx(236.8e6, rel=0.005)
    assert finecoder == pytest.approx(68.8e6, rel=0.005)
    assert sum(p.numel() for p in encoder.trainable_parameters()) == aggregation + finecoder
