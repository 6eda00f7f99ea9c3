"""Every precision of the DIFF config on the CPU: a full IPKL training step and an evaluation.

float32, bfloat16 and float16 (CPU autocast supports both half types on the pinned torch). With a
half ``dtype`` the frozen UNet, VAE and text encoder are held in that precision (cast once); the
trained parts (aggregation, finecoder, head) stay float32 and receive float32 gradients. Any
dtype mismatch in the hooks, the feature storage or the head fails here.
"""
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.structures import PixelData

import mmseg.models  # noqa: F401  (registers the models)
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

BASE_MODEL = 'configs/_base_/models/daformer_sepaspp_diff.py'
# Narrow trainable parts and a 6-step inversion (2 saved steps, two stochastic updates).
OVERRIDES = dict(projection_channels=[64, 128, 128], stride4_channels=32,
                 timesteps=[40, 30, 14, 11, 8, 4], saved_steps=[4, 1])
HALF = (torch.bfloat16, torch.float16)
NAMES = {torch.float32: 'float32', torch.bfloat16: 'bfloat16', torch.float16: 'float16'}


@pytest.fixture(scope='module')
def base_cfg(repo_root):
    return Config.fromfile(str(repo_root / BASE_MODEL))


def build(base_cfg, tiny_sd_dir, dtype_name):
    cfg = copy.deepcopy(base_cfg.model)
    cfg.backbone.overrides = dict(model_id=str(tiny_sd_dir), dtype=dtype_name, **OVERRIDES)
    cfg.decode_head.update(in_channels=[32, 64, 128, 128], channels=64,
                           decoder_params=dict(embed_dims=64,
                                               fusion_cfg=dict(dilations=(1, 6, 12, 18),
                                                               sep=True)))
    torch.manual_seed(0)
    return MODELS.build(cfg)


def batch(size=2, height=64, width=128):
    """Images in [-1, 1] with labels holding two prompted classes (sidewalk 1, wall 3)."""
    gen = torch.Generator().manual_seed(5)
    inputs = torch.rand(size, 3, height, width, generator=gen) * 2 - 1
    samples = []
    for i in range(size):
        label = torch.randint(0, 19, (1, height, width), generator=gen)
        label[:, : height // 2, : width // 2] = 1 + 2 * i  # class 1 or 3 present
        sample = SegDataSample(metainfo=dict(img_path=f'img{i}.png', ori_shape=(height, width),
                                             img_shape=(height, width)))
        sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    return inputs, samples


def frozen_and_trained(model):
    extractor = model.backbone.encoder.extractor
    frozen = list(extractor.unet.parameters()) + list(extractor.vae.parameters())
    trained = [p for p in model.parameters() if p.requires_grad]
    return frozen, trained


def train_step(model):
    """IPKL loss, backward, clipped AdamW step; returns (losses, gradient norms by name)."""
    model.train()
    inputs, samples = batch()
    torch.manual_seed(1)
    losses = model.loss(inputs, samples)
    total, _ = model.parse_losses(losses)
    total.backward()
    _, trained = frozen_and_trained(model)
    grads = {name: p.grad for name, p in model.named_parameters() if p.requires_grad}
    optimizer = torch.optim.AdamW(trained, lr=1e-3)
    torch.nn.utils.clip_grad_norm_(trained, 5.0)
    optimizer.step()
    return {k: v.detach() for k, v in losses.items()}, grads


def predict(model):
    model.eval()
    inputs, samples = batch()
    with torch.no_grad():
        out = model.predict(inputs, samples)
    return torch.stack([s.seg_logits.data for s in out]), torch.stack(
        [s.pred_sem_seg.data for s in out])


@pytest.fixture(scope='module')
def float32_run(base_cfg, tiny_sd_dir):
    model = build(base_cfg, tiny_sd_dir, 'float32')
    return train_step(model), predict(model)


@pytest.mark.parametrize('dtype', [torch.float32, *HALF], ids=lambda d: NAMES[d])
def test_training_step_and_evaluation_in_each_precision(dtype, base_cfg, tiny_sd_dir,
                                                        float32_run):
    model = build(base_cfg, tiny_sd_dir, NAMES[dtype])
    extractor = model.backbone.encoder.extractor
    frozen, trained = frozen_and_trained(model)
    # Held in the chosen precision from construction on; trained parts stay float32.
    assert extractor.held_dtype == dtype
    assert {p.dtype for p in frozen} == {dtype}
    assert {p.dtype for p in trained} == {torch.float32}
    assert extractor.text.hidden_states.dtype == torch.float32
    before = [p.detach().clone() for p in trained]

    (losses, grads), (logits, preds) = train_step(model), predict(model)
    (ref_losses, ref_grads), (ref_logits, ref_preds) = float32_run

    assert set(losses) == set(ref_losses)
    for key, value in losses.items():
        assert torch.isfinite(value).all(), key
        if 'acc' not in key:
            assert value.item() == pytest.approx(ref_losses[key].item(), rel=0.05, abs=1e-3), key
    # Gradients flow into every trained part (aggregation, finecoder, head), in float32.
    for prefix in ('backbone.encoder.aggregation', 'backbone.encoder.finecoder', 'decode_head'):
        named = {n: g for n, g in grads.items() if n.startswith(prefix)}
        assert named and all(g is not None and g.dtype == torch.float32 for g in named.values())
        assert all(torch.isfinite(g).all() for g in named.values())
        assert sum(g.abs().sum() for g in named.values()) > 0, prefix
    assert all(p.grad is None for p in frozen)
    assert any(not torch.equal(b, p) for b, p in zip(before, trained))  # the step moved them
    # Evaluation: finite float32 logits close to the float32 model's.
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
    # bfloat16 keeps 8 mantissa bits: the random tiny model's logits move by up to ~15 % of
    # their range at single pixels (measured), a few % on average.
    scale, error = ref_logits.abs().max(), (logits - ref_logits).abs()
    print(f'{NAMES[dtype]}: logits max error {error.max() / scale:.4f}, mean '
          f'{error.mean() / scale:.4f} of the range; same prediction at '
          f'{(preds == ref_preds).float().mean():.3f} of the pixels')
    assert error.max() <= 0.3 * scale and error.mean() <= 0.05 * scale
    assert (preds == ref_preds).float().mean() > 0.8
    assert {p.dtype for p in frozen} == {dtype}  # nothing re-cast them


def test_auto_resolves_by_device_at_the_first_call(base_cfg, tiny_sd_dir):
    model = build(base_cfg, tiny_sd_dir, 'auto')
    extractor = model.backbone.encoder.extractor
    assert extractor.held_dtype == torch.float32
    predict(model)  # on the CPU, auto is float32: nothing is cast
    assert extractor.held_dtype == torch.float32
    assert {p.dtype for p in extractor.unet.parameters()} == {torch.float32}
    # What a first call on a GPU does (auto = float16 there), without needing one:
    extractor.hold_precision(torch.float16)
    assert {p.dtype for p in extractor.vae.parameters()} == {torch.float16}
