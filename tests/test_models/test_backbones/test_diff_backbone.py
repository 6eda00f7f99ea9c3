"""The registered DIFF backbone: built from the base model config with the tiny SD folder."""
import copy

import pytest
import torch
from mmengine.config import Config

import mmseg.models  # noqa: F401  (registers the models)
from mmseg.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS

BASE_MODEL = 'configs/_base_/models/daformer_sepaspp_diff.py'
# A short inversion keeps the test fast; the widths stay the released ones.
SHORT = dict(timesteps=[40, 30, 14, 11, 8, 4], saved_steps=[4, 1])


@pytest.fixture(scope='module')
def base_cfg(repo_root):
    return Config.fromfile(str(repo_root / BASE_MODEL))


@pytest.fixture(scope='module')
def model(base_cfg, tiny_sd_dir):
    cfg = copy.deepcopy(base_cfg.model)
    cfg.backbone.overrides = dict(model_id=str(tiny_sd_dir), **SHORT)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def test_backbone_out_channels_equal_head_in_channels(model, base_cfg):
    backbone = model.backbone
    assert type(backbone).__name__ == 'DIFF'
    assert list(backbone.out_channels) == base_cfg.model.decode_head.in_channels
    assert backbone.out_channels == (256, 512, 1024, 2048)
    assert backbone.out_strides == (4, 8, 16, 32)
    with torch.no_grad():
        features = backbone(torch.zeros(1, 3, 64, 128), generator=[torch.Generator()])
    for out, channels, stride in zip(features, backbone.out_channels, backbone.out_strides):
        assert out.shape == (1, channels, 64 // stride, 128 // stride)
    assert backbone.last_usage.calls == 5 and set(backbone.last_usage.rows) == {1}


def test_relative_diff_config_resolves_against_the_repository(tiny_sd_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    backbone = MODELS.build(dict(type='DIFF', diff_config='diff_config.yaml', overrides=dict(
        model_id=str(tiny_sd_dir), projection_channels=[64, 128, 128], stride4_channels=32,
        **SHORT)))
    assert backbone.out_channels == (32, 64, 128, 128)
    with pytest.raises(FileNotFoundError, match='nope.yaml'):
        MODELS.build(dict(type='DIFF', diff_config='nope.yaml'))


def test_frozen_parts_are_in_no_optimiser_group_and_no_checkpoint(model, repo_root):
    optim_cfg = Config.fromfile(str(repo_root / 'configs/_base_/schedules/adamw.py'))
    cfg = copy.deepcopy(optim_cfg.optim_wrapper)
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
        type=cfg.pop('constructor'), paramwise_cfg=cfg.pop('paramwise_cfg'),
        optim_wrapper_cfg=cfg))
    wrapper = constructor(model)
    in_optimiser = {id(p) for group in wrapper.optimizer.param_groups for p in group['params']}
    frozen = list(model.backbone.encoder.extractor.parameters())
    assert frozen and not any(id(p) in in_optimiser for p in frozen)
    trainable = list(model.backbone.trainable_parameters())
    assert trainable and all(id(p) in in_optimiser for p in trainable)
    state = model.state_dict()
    assert not any('.extractor.' in key for key in state)
    assert any(key.startswith('backbone.encoder.finecoder.') for key in state)
    model.load_state_dict(state, strict=True)


def test_init_weights_leaves_everything_as_built(model):
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    unet_weight = model.backbone.encoder.extractor.unet.conv_in.weight.clone()
    model.backbone.init_weights()
    assert all(torch.equal(v, model.backbone.state_dict()[k]) for k, v in before.items())
    assert torch.equal(unet_weight, model.backbone.encoder.extractor.unet.conv_in.weight)
    with pytest.raises(ValueError, match='init_cfg'):
        MODELS.build(dict(type='DIFF', init_cfg=dict(type='Kaiming', layer='Conv2d')))
