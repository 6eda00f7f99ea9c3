"""DAFormerHead with sep-ASPP fusion: structure, parameter count, shapes, loss."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmengine.structures import PixelData

from mmseg.models.losses import cross_entropy
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

RELEASED_CHANNELS = [256, 512, 1024, 2048]


def head_cfg(in_channels=RELEASED_CHANNELS, channels=256, embed_dims=256, **overrides):
    cfg = dict(type='DAFormerHead', in_channels=in_channels, in_index=[0, 1, 2, 3],
               channels=channels, num_classes=19, dropout_ratio=0.1,
               norm_cfg=dict(type='BN', requires_grad=True), align_corners=False,
               decoder_params=dict(embed_dims=embed_dims,
                                   fusion_cfg=dict(dilations=(1, 6, 12, 18), sep=True)),
               loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0, avg_non_ignore=False),
               ignore_index=255)
    cfg.update(overrides)
    return cfg


@pytest.fixture(scope='module')
def released_head():
    return MODELS.build(head_cfg())


def test_parameter_count_matches_release(released_head):
    embeds = sum(c * 256 + 256 for c in RELEASED_CHANNELS)
    branch_1x1 = 1024 * 256 + 2 * 256
    branch_sep = (1024 * 9 + 2 * 1024) + (1024 * 256 + 2 * 256)
    bottleneck = 1024 * 256 * 9 + 2 * 256
    classifier = 256 * 19 + 19
    expected = embeds + branch_1x1 + 3 * branch_sep + bottleneck + classifier
    count = sum(p.numel() for p in released_head.parameters())
    assert count == expected == 4_433_171  # "4.43 M" (docs/method.md §1.13, §3)


def test_structure_is_sep_aspp(released_head):
    fuse = released_head.fuse_layer
    assert fuse.image_pool is None
    first, *separable = fuse.aspp_modules
    assert isinstance(first, ConvModule) and first.conv.kernel_size == (1, 1)
    assert [m.depthwise_conv.conv.dilation for m in separable] == [(6, 6), (12, 12), (18, 18)]
    for module in separable:
        assert isinstance(module, DepthwiseSeparableConvModule)
        assert module.depthwise_conv.conv.groups == 1024
        assert module.depthwise_conv.with_norm and module.pointwise_conv.with_norm
        assert module.pointwise_conv.conv.kernel_size == (1, 1)
    assert fuse.bottleneck.conv.kernel_size == (3, 3)
    assert fuse.bottleneck.conv.in_channels == 1024
    assert isinstance(fuse.bottleneck.norm, nn.BatchNorm2d)
    assert isinstance(released_head.dropout, nn.Dropout2d) and released_head.dropout.p == 0.1
    weight = released_head.conv_seg.weight
    assert released_head.conv_seg.bias is not None and not released_head.conv_seg.bias.any()
    assert 0.008 < weight.std().item() < 0.012 and abs(weight.mean().item()) < 0.002


def test_output_is_stride_4_logits(released_head):
    released_head.eval()
    feats = [torch.randn(2, c, 64 // s, 96 // s)
             for c, s in zip(RELEASED_CHANNELS, (4, 8, 16, 32))]
    with torch.no_grad():
        out = released_head(feats)
    assert out.shape == (2, 19, 16, 24)


def test_embedding_is_linear_on_tokens():
    head = MODELS.build(head_cfg([4, 6, 8, 10], channels=8, embed_dims=5))
    x = torch.randn(2, 6, 3, 4)
    layer = head.embed_layers['1'].proj
    expected = torch.einsum('bchw,ec->behw', x, layer.weight) + layer.bias[None, :, None, None]
    # einsum vs the layer's matmul sum in another order: 1e-5 of the output's scale.
    torch.testing.assert_close(head.embed_layers['1'](x), expected, rtol=0,
                               atol=1e-5 * float(expected.abs().max()))


def test_loss_by_feat_upsamples_to_label_size():
    head = MODELS.build(head_cfg([4, 6, 8, 10], channels=8, embed_dims=8))
    logits = torch.randn(2, 19, 4, 5)
    labels = torch.randint(0, 19, (2, 1, 16, 20))
    labels[:, :, :3] = 255
    samples = []
    for label in labels:
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    losses = head.loss_by_feat(logits, samples)
    assert set(losses) == {'loss_seg', 'acc_seg'}
    up = F.interpolate(logits, size=(16, 20), mode='bilinear', align_corners=False)
    assert torch.allclose(losses['loss_seg'], cross_entropy(up, labels[:, 0]))
    valid = labels[:, 0] != 255
    acc = (up.argmax(1) == labels[:, 0])[valid].float().mean() * 100
    assert losses['acc_seg'].item() == pytest.approx(acc.item(), abs=1e-4)


@pytest.mark.parametrize('override, message', [
    (dict(decoder_params=dict(embed_dims=8, fusion_cfg=dict(dilations=(1, 6)), extra=1)),
     'unknown decoder_params'),
    (dict(decoder_params=dict(embed_dims=8, fusion_cfg=dict(sep=True))), 'dilations'),
    (dict(align_corners=True), 'align_corners'),
    (dict(in_index=[0, 1]), 'same length'),
])
def test_bad_config_is_one_clear_error(override, message):
    with pytest.raises(ValueError, match=message):
        MODELS.build(head_cfg([4, 6, 8, 10], channels=8, embed_dims=8, **override))
