"""Experiments 80-86 (ablations of exp 51), 90 (MiT-B5 baseline) and 91-94 (other SD UNets).

Each row goes through ``run_experiments.py --exp N --dry-run`` and the resolved config is
checked against the stated values and against exp 51 (everything not ablated is exp 51's).
"""
from pathlib import Path

import pytest
from mmengine.config import Config

import experiments
import run_experiments
from experiments import EXPERIMENTS

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def dry_run(tmp_path, monkeypatch):
    """``--exp N --dry-run`` under a private root; returns the resolved generated config."""
    (tmp_path / 'configs').mkdir()
    for name in ('diff', '_base_', 'baselines', 'diff_configs'):
        (tmp_path / 'configs' / name).symlink_to(REPO / 'configs' / name)
    monkeypatch.setattr(run_experiments, 'ROOT', tmp_path)

    def run(exp_id: int) -> Config:
        assert run_experiments.main(['--exp', str(exp_id), '--dry-run']) == {}
        [path] = sorted((tmp_path / 'configs/generated' / f'local-exp{exp_id}').glob('*.py'))
        return Config.fromfile(str(path))
    return run


@pytest.fixture(scope='module')
def exp51() -> Config:
    return Config.fromfile(str(REPO / experiments.EXP51))


def _without_model(cfg: Config) -> dict:
    """Everything but the model and the run's identity (name, work_dir, exp)."""
    skip = {'model', 'name', 'work_dir', 'exp', 'git_rev', 'filename'}
    return {k: v for k, v in cfg.to_dict().items() if k not in skip}


ABLATIONS = {
    80: dict(overrides=dict(timesteps=[80, 60, 40, 20, 1], saved_steps=[4, 3, 2, 1, 0])),
    81: dict(overrides=dict(timesteps=[100], saved_steps=[0])),
    82: dict(overrides=dict(transformer_indices=[])),
    83: dict(overrides=dict(projection_channels=[128, 320, 512], stride4_channels=64),
             in_channels=[64, 128, 320, 512]),
    84: dict(overrides=dict(projection_channels=[192, 384, 768], stride4_channels=96),
             in_channels=[96, 192, 384, 768]),
    85: dict(overrides=dict(use_path_control=False)),
    86: dict(overrides={}, ipkl=dict(enabled=False, consistency_weight=1.0)),
}


@pytest.mark.parametrize('exp_id', sorted(ABLATIONS))
def test_ablation_resolves_exp51_with_one_change(exp_id, dry_run, exp51):
    expected = ABLATIONS[exp_id]
    cfg = dry_run(exp_id)
    assert 'ablation' in EXPERIMENTS[exp_id].base
    model, base = cfg.model, exp51.model
    assert model.backbone.type == 'DIFF' and model.backbone.diff_config == 'diff_config.yaml'
    assert model.backbone.overrides == expected['overrides']
    assert model.decode_head.in_channels == expected.get('in_channels', [256, 512, 1024, 2048])
    assert model.train_cfg.ipkl == expected.get('ipkl', base.train_cfg.ipkl)
    # Nothing else differs from exp 51: head, data, schedule, evaluation on five domains.
    assert model.test_cfg == base.test_cfg
    assert model.data_preprocessor == base.data_preprocessor
    head = {k: v for k, v in model.decode_head.items() if k != 'in_channels'}
    assert head == {k: v for k, v in base.decode_head.items() if k != 'in_channels'}
    assert _without_model(cfg) == _without_model(exp51)
    assert set(cfg.val_cfg.extra_domains) == {'acdc', 'dark_zurich', 'bdd100k', 'mapillary'}
    assert cfg.train_cfg.max_iters == 40000


@pytest.mark.parametrize('exp_id', [83, 84])
def test_projection_ablations_build_with_the_released_norm_groups(exp_id):
    """The release's fixed GroupNorm groups (16 / 32) divide the smaller widths."""
    from mmseg.models.backbones.diff import DIFFConfig
    overrides = ABLATIONS[exp_id]['overrides']
    config = DIFFConfig.from_yaml(REPO / 'diff_config.yaml', **overrides)
    assert (config.aggregation_norm_groups, config.finecoder_norm_groups) == (16, 32)


@pytest.mark.parametrize('exp_id, family', [(91, 'sd15'), (92, 'sd21-base'), (93, 'sd20')])
def test_family_experiment_is_exp51_with_another_diff_config(exp_id, family, dry_run, exp51):
    from mmseg.models.backbones.diff import DIFFConfig
    cfg = dry_run(exp_id)
    backbone = cfg.model.backbone
    assert backbone.diff_config == f'configs/diff_configs/{family}.yaml'
    assert {**cfg.model, 'backbone': None} == {**exp51.model, 'backbone': None}
    assert _without_model(cfg) == _without_model(exp51)
    # The family file differs from diff_config.yaml in model_id only.
    default = DIFFConfig.from_yaml(REPO / 'diff_config.yaml').to_dict()
    config = DIFFConfig.from_yaml(REPO / backbone.diff_config).to_dict()
    assert {k for k in default if default[k] != config[k]} == {'model_id'}


def test_mitb5_baseline_is_exp51_with_daformers_model(dry_run, exp51):
    cfg = dry_run(90)
    model = cfg.model
    assert model.backbone == dict(type='MiT', pretrained='checkpoints/mit-b5',
                                  mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                                  drop_path_rate=0.1)
    assert model.decode_head.in_channels == [64, 128, 320, 512]
    head = {k: v for k, v in model.decode_head.items() if k != 'in_channels'}
    assert head == {k: v for k, v in exp51.model.decode_head.items() if k != 'in_channels'}
    assert model.train_cfg.ipkl.enabled is False
    assert model.test_cfg == dict(exp51.model.test_cfg, size_divisor=32)
    # DAFormer's optimiser: exp 51's AdamW and clip, no decay on norm layers.
    opt, base = cfg.optim_wrapper, exp51.optim_wrapper
    assert opt.optimizer == base.optimizer and opt.clip_grad == base.clip_grad
    assert opt.paramwise_cfg.custom_keys == dict(head=dict(lr_mult=10.0),
                                                 pos_block=dict(decay_mult=0.0),
                                                 norm=dict(decay_mult=0.0))
    # Same data, rare-class sampling, schedule and five-domain evaluation as exp 51.
    # Only the padding differs: MiT needs multiples of 32, the SD UNet of 64.
    skip = ('optim_wrapper', 'data_preprocessor')
    ours = {k: v for k, v in _without_model(cfg).items() if k not in skip}
    theirs = {k: v for k, v in _without_model(exp51).items() if k not in skip}
    assert ours == theirs
    assert model.data_preprocessor == dict(exp51.model.data_preprocessor, size_divisor=32)


def test_sdxl_experiment_is_exp51_with_the_sdxl_diff_config(dry_run, exp51):
    """Exp 94: exp 51 with configs/diff_configs/sdxl.yaml; that file differs from
    diff_config.yaml in the folder, the precision and the hooked layers of SD XL's 3 up blocks."""
    from mmseg.models.backbones.diff import DIFFConfig
    cfg = dry_run(94)
    backbone = cfg.model.backbone
    assert backbone.diff_config == 'configs/diff_configs/sdxl.yaml'
    assert {**cfg.model, 'backbone': None} == {**exp51.model, 'backbone': None}
    assert _without_model(cfg) == _without_model(exp51)
    default = DIFFConfig.from_yaml(REPO / 'diff_config.yaml').to_dict()
    config = DIFFConfig.from_yaml(REPO / backbone.diff_config).to_dict()
    assert {k for k in default if default[k] != config[k]} == {
        'model_id', 'dtype', 'resnet_indices', 'transformer_indices'}
    assert config['dtype'] == 'bfloat16'
    assert config['resnet_indices'] == [[i, j] for i in range(3) for j in range(3)]
    assert config['transformer_indices'] == [[i, j] for i in range(2) for j in range(3)]
