"""EncoderDecoder with a tiny test backbone: losses (plain and IPKL), inference, padding."""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.structures import PixelData

import tests.test_models.tiny_backbone  # noqa: F401  (registers TestTinyBackbone)
from mmseg.models.segmentors import EncoderDecoder
from mmseg.models.segmentors.encoder_decoder import _windows
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

CHANNELS = [8, 16, 32, 64]


def model_cfg(ipkl=False, weight=1.0, test_cfg=None, noise_std=0.0):
    return dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[127.5] * 3, std=[127.5] * 3,
                               bgr_to_rgb=True, test_cfg=dict(size_divisor=64)),
        backbone=dict(type='TestTinyBackbone', channels=CHANNELS, noise_std=noise_std),
        decode_head=dict(type='DAFormerHead', in_channels=CHANNELS, in_index=[0, 1, 2, 3],
                         channels=16, num_classes=19, dropout_ratio=0.1,
                         norm_cfg=dict(type='BN', requires_grad=True),
                         decoder_params=dict(embed_dims=16,
                                             fusion_cfg=dict(dilations=(1, 6, 12, 18), sep=True)),
                         loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
        train_cfg=dict(ipkl=dict(enabled=ipkl, consistency_weight=weight)),
        test_cfg=test_cfg or dict(mode='whole', size_divisor=64, seed=0))


def build(**kwargs):
    torch.manual_seed(0)
    return MODELS.build(model_cfg(**kwargs))


def train_batch(batch=2, height=64, width=64):
    gen = torch.Generator().manual_seed(1)
    inputs = torch.rand(batch, 3, height, width, generator=gen) * 2 - 1
    samples = []
    for i in range(batch):
        label = torch.randint(0, 19, (1, height, width), generator=gen)
        label[:, :4] = 255
        sample = SegDataSample(metainfo=dict(img_path=f'img{i}.png'))
        sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    return inputs, samples


def test_plain_loss_keys_and_backward():
    model = build()
    losses = model(*train_batch(), mode='loss')
    assert set(losses) == {'decode.loss_seg', 'decode.acc_seg'}
    total, log_vars = model.parse_losses(losses)
    total.backward()
    assert model.decode_head.conv_seg.weight.grad is not None
    assert model.backbone.stem.weight.grad.abs().sum() > 0


def test_ipkl_losses_match_hand_computation():
    model = build(ipkl=True, weight=2.5)
    inputs, samples = train_batch()
    torch.manual_seed(3)  # dropout draws: same order below
    losses = model.loss(inputs, samples)
    assert set(losses) == {'decode_w_seg.loss_seg', 'decode_w_seg.acc_seg',
                           'decode_wo_seg.loss_seg', 'decode_wo_seg.acc_seg', 'consistency_loss'}
    label_map = torch.stack([s.gt_sem_seg.data for s in samples])
    torch.manual_seed(3)
    logits_w = model.decode_head(model.backbone(inputs, label_map=label_map))
    logits_wo = model.decode_head(model.backbone(inputs))
    assert not torch.equal(logits_w, logits_wo)  # the label map changes the features
    mse = ((logits_w - logits_wo) ** 2).sum() / logits_w.numel()
    assert losses['consistency_loss'].item() == pytest.approx(2.5 * mse.item(), rel=1e-5)
    up = F.interpolate(logits_wo, size=(64, 64), mode='bilinear', align_corners=False)
    ce = F.cross_entropy(up, label_map[:, 0], ignore_index=255, reduction='sum') / up[:, 0].numel()
    assert losses['decode_wo_seg.loss_seg'].item() == pytest.approx(ce.item(), rel=1e-5)
    total, _ = model.parse_losses(losses)
    expected = sum(v for k, v in losses.items() if 'loss' in k)
    assert total.item() == pytest.approx(expected.item())


def test_ipkl_consistency_gradient_reaches_both_passes():
    model = build(ipkl=True)
    captured = []

    def keep(module, args, output):
        output.retain_grad()
        captured.append(output)

    model.decode_head.register_forward_hook(keep)
    losses = model.loss(*train_batch())
    losses['consistency_loss'].backward()
    logits_w, logits_wo = captured
    expected = 2 * (logits_w - logits_wo).detach() / logits_w.numel()
    # Autograd of the MSE vs its closed form round differently: 1e-5 of the gradient's scale.
    tolerance = dict(rtol=0, atol=1e-5 * float(expected.abs().max()))
    torch.testing.assert_close(logits_w.grad, expected, **tolerance)
    torch.testing.assert_close(logits_wo.grad, -expected, **tolerance)
    # Only the label-steered pass uses the label embedding: it gets a gradient too.
    assert model.backbone.label_embed.weight.grad.abs().sum() > 0


def test_decode_losses_take_one_or_two_trajectories():
    model = build(ipkl=True)
    inputs, samples = train_batch()
    trajectories = model.training_trajectories(inputs, samples)
    assert [t.label_map is not None for t in trajectories] == [True, False]
    features = model.stages.extract(trajectories)
    assert 'consistency_loss' in model.decode_losses(features, samples)
    assert set(model.decode_losses(features[1:], samples)) == {'decode.loss_seg',
                                                               'decode.acc_seg'}
    with pytest.raises(ValueError, match='1 or 2 trajectories'):
        model.decode_losses(features * 2, samples)


def test_encode_decode_pads_to_size_divisor_and_crops_back():
    model = build().eval()
    seen = []
    model.backbone.register_forward_hook(lambda m, args, out: seen.append(args[0].shape))
    inputs = torch.rand(1, 3, 50, 70) * 2 - 1
    with torch.no_grad():
        logits = model.encode_decode(inputs, None)
        padded = F.pad(inputs, (0, 58, 0, 14), value=0)
        manual = F.interpolate(model._forward(padded), size=(64, 128), mode='bilinear',
                               align_corners=False)[:, :, :50, :70]
    assert seen[0] == (1, 3, 64, 128)
    assert logits.shape == (1, 19, 50, 70)
    assert torch.equal(logits, manual)


def test_predict_returns_predictions_at_ori_shape():
    model = build().eval()
    sample = SegDataSample(metainfo=dict(img_path='a.png', ori_shape=(100, 140)))
    image = torch.randint(0, 256, (3, 50, 70), dtype=torch.uint8)
    with torch.no_grad():
        result = model.val_step(dict(inputs=[image], data_samples=[sample]))[0]
        data = model.data_preprocessor(dict(inputs=[image]), False)
        logits = model.encode_decode(data['inputs'])[:, :, :50, :70]
    assert result.pred_sem_seg.data.shape == (1, 100, 140)
    assert result.seg_logits.data.shape == (19, 100, 140)
    expected = F.interpolate(logits, size=(100, 140), mode='bilinear', align_corners=False)[0]
    assert torch.equal(result.seg_logits.data, expected)
    assert torch.equal(result.pred_sem_seg.data[0], expected.argmax(0))


def test_windows_cover_the_image_as_expected():
    assert _windows(10, 10, 6, 6, 4, 4) == [(0, 6, 0, 6), (0, 6, 4, 10), (4, 10, 0, 6),
                                            (4, 10, 4, 10)]
    assert _windows(5, 7, 8, 8, 4, 4) == [(0, 5, 0, 7)]  # crop larger than the image


class PointwiseSegmentor(EncoderDecoder):
    """A per-pixel model: any correct window assembly reproduces the whole-image output."""

    def encode_decode(self, inputs, batch_img_metas=None, generator=None):
        return self.pointwise(inputs)


def test_slide_inference_equals_whole_for_a_pointwise_model():
    cfg = model_cfg(test_cfg=dict(mode='slide', crop_size=(32, 48), stride=(20, 30)))
    cfg.pop('type')
    model = PointwiseSegmentor(**cfg).eval()
    model.pointwise = nn.Conv2d(3, 19, 1)
    inputs = torch.randn(2, 3, 70, 90)
    with torch.no_grad():
        slide = model.slide_inference(inputs, [{}] * 2)
        whole = model.whole_inference(inputs, [{}] * 2)
    # Crops vs the whole image may take different conv kernels: 1e-5 of the logits' scale.
    torch.testing.assert_close(slide, whole, rtol=0, atol=1e-5 * float(whole.abs().max()))
    shifted = model.whole_inference(inputs.roll(1, dims=-1), [{}] * 2)  # negative control
    assert (shifted - whole).abs().max() > 1e-2 * whole.abs().max()


def test_slide_inference_averages_overlapping_windows():
    model = build(test_cfg=dict(mode='slide', crop_size=(64, 64), stride=(32, 32),
                                size_divisor=64)).eval()
    inputs = torch.rand(1, 3, 64, 128) * 2 - 1
    with torch.no_grad():
        slide = model.inference(inputs, [{}])
        windows = [model.encode_decode(inputs[:, :, :, x:x + 64]) for x in (0, 32, 64)]
    expected = torch.zeros_like(slide)
    expected[..., :32] = windows[0][..., :32]
    expected[..., 32:64] = (windows[0][..., 32:] + windows[1][..., :32]) / 2
    expected[..., 64:96] = (windows[1][..., 32:] + windows[2][..., :32]) / 2
    expected[..., 96:] = windows[2][..., 32:]
    # Accumulated window sums vs hand-averaged halves round differently: 1e-5 of the scale.
    torch.testing.assert_close(slide, expected, rtol=0, atol=1e-5 * float(expected.abs().max()))
    # Negative control: a window averaged with the wrong neighbour is far outside 1e-5.
    assert (slide[..., 32:64] - windows[1][..., :32]).abs().max() > 1e-2 * expected.abs().max()


def test_evaluation_randomness_is_per_image_and_repeatable():
    model = build(noise_std=0.5).eval()
    inputs = torch.rand(2, 3, 64, 64) * 2 - 1

    def predict(batch_inputs, paths):
        samples = [SegDataSample(metainfo=dict(img_path=p, ori_shape=(64, 64))) for p in paths]
        with torch.no_grad():
            return [s.seg_logits.data for s in model.predict(batch_inputs, samples)]

    def differ(a, b):
        return (a - b).abs().max().item()

    pair = predict(inputs, ['a.png', 'b.png'])
    # Batch-independent up to float summation order; repeatable exactly.
    assert differ(pair[0], predict(inputs[:1], ['a.png'])[0]) < 1e-6
    assert torch.equal(pair[1], predict(inputs, ['a.png', 'b.png'])[1])
    assert differ(pair[0], predict(inputs[:1], ['c.png'])[0]) > 1e-4  # seeded by the path
    model.test_cfg['seed'] = 1
    assert differ(pair[0], predict(inputs[:1], ['a.png'])[0]) > 1e-4  # and by the seed


def test_tensor_mode_and_bad_configs():
    model = build()
    assert model(torch.zeros(1, 3, 64, 96), mode='tensor').shape == (1, 19, 16, 24)
    with pytest.raises(ValueError, match='mode must be'):
        model(torch.zeros(1, 3, 64, 64), mode='nope')
    bad = model_cfg()
    bad['decode_head'] = dict(bad['decode_head'], in_channels=[8, 16, 32, 65])
    with pytest.raises(ValueError, match='does not match the backbone out_channels'):
        MODELS.build(bad)
    for key, value, message in [('train_cfg', dict(ipk=dict()), 'unknown key'),
                                ('train_cfg', dict(ipkl=dict(enabled=True)), 'consistency'),
                                ('test_cfg', dict(mode='slide'), 'crop_size'),
                                ('test_cfg', dict(mode='whole', sed=0), 'unknown key')]:
        cfg = copy.deepcopy(model_cfg())
        cfg[key] = value
        with pytest.raises(ValueError, match=message):
            MODELS.build(cfg)


def test_predict_also_crops_padding_added_by_the_pipeline():
    model = build().eval()
    # The pipeline padded a 40x60 image to 50x70; the preprocessor pads on to 64x128.
    sample = SegDataSample(metainfo=dict(img_path='a.png', ori_shape=(40, 60), img_shape=(40, 60)))
    image = torch.randint(0, 256, (3, 50, 70), dtype=torch.uint8)
    with torch.no_grad():
        result = model.val_step(dict(inputs=[image], data_samples=[sample]))[0]
        data = model.data_preprocessor(dict(inputs=[image]), False)
        logits = model.encode_decode(data['inputs'])[0, :, :40, :60]
    assert result.metainfo['padding_size'] == [0, 58, 0, 14]
    assert torch.allclose(result.seg_logits.data, logits, atol=1e-6)
