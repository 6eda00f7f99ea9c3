"""experiments.py / run_experiments.py: pure expansion, release names, --dry-run configs."""
import re
from pathlib import Path

import pytest
from mmengine.config import Config

import experiments
import run_experiments
from experiments import EXPERIMENTS, Experiment, expand, variant_slug

REPO = Path(__file__).resolve().parents[1]
RELEASE = re.compile(r'^\d{6}_\d{4}_gtaCAug2cs_dgdacs_srconly_rcs001_daformer_sepaspp_diff_'
                     r'poly10warm_s0_[0-9a-f]{5}$')


def test_expand_is_pure_and_names_like_the_release():
    a = expand(50, EXPERIMENTS[50], '240903_1411', 'abc', nonce='n')
    assert a == expand(50, EXPERIMENTS[50], '240903_1411', 'abc', nonce='n')
    assert a != expand(50, EXPERIMENTS[50], '240903_1411', 'abc', nonce='m')
    [cfg] = a
    assert RELEASE.match(cfg['name']), cfg['name']
    assert cfg['work_dir'] == f'work_dirs/local-exp50/{cfg["name"]}'
    assert cfg['randomness'] == {'seed': 0} and cfg['git_rev'] == 'abc'
    base = REPO / 'configs/generated/local-exp50' / cfg['_base_'][0]
    assert base.resolve() == (REPO / experiments.EXP50).resolve()


def test_variants_seeds_and_debug():
    exp = Experiment('t', experiments.DEMO, variants=({}, {'train_cfg.max_iters': 2}),
                     seeds=(0, 1))
    cfgs = expand(3, exp, '250101_0000', debug=True)
    assert len(cfgs) == 4 and len({c['name'] for c in cfgs}) == 4
    assert cfgs[2]['train_cfg'] == {'max_iters': 2, 'val_interval': 200}
    assert cfgs[3]['seed'] == 1 and '_it2_s1_' in cfgs[3]['name']
    assert cfgs[0]['default_hooks'] == {'logger': {'interval': 10}}
    assert variant_slug({'model.backbone.overrides.timesteps': [40, 20]}) == 'ts40_20'
    with pytest.raises(KeyError, match='ABBREVIATIONS'):
        variant_slug({'some.new.key': 1})
    assert EXPERIMENTS[70].seeds == (0, 1) and EXPERIMENTS[71].seeds == (0, 1)


@pytest.fixture
def generated(tmp_path, monkeypatch):
    """run_experiments writes under a private root (configs/diff and _base_ linked in).

    Yields a function listing the configs generated for an experiment id; parallel tests
    and the user's own configs/generated/ are left alone.
    """
    (tmp_path / 'configs').mkdir()
    for name in ('diff', '_base_', 'baselines', 'diff_configs'):
        (tmp_path / 'configs' / name).symlink_to(REPO / 'configs' / name)
    monkeypatch.setattr(run_experiments, 'ROOT', tmp_path)
    yield lambda exp_id: sorted((tmp_path / 'configs/generated' / f'local-exp{exp_id}')
                                .glob('*.py'))


def test_dry_run_exp50_resolves_every_release_value(generated, capsys):
    assert run_experiments.main(['--exp', '50', '--dry-run']) == {}
    printed = capsys.readouterr().out
    [path] = generated(50)
    assert RELEASE.match(path.stem) and f'local-exp50/{path.name}' in printed
    cfg = Config.fromfile(str(path))
    opt = cfg.optim_wrapper
    assert opt.optimizer == dict(type='AdamW', lr=6e-05, betas=(0.9, 0.999), eps=1e-08,
                                 weight_decay=0.01)
    assert opt.paramwise_cfg.custom_keys == {'head': {'lr_mult': 10.0}}
    assert opt.clip_grad == dict(max_norm=5, norm_type=2)
    warm, poly = cfg.param_scheduler
    assert (warm.type, warm.start_factor, warm.end - 1, warm.by_epoch) == ('LinearLR', 1e-06,
                                                                         1500, False)
    assert (poly.type, poly.power, poly.eta_min, poly.end - 1) == ('PolyLR', 1.0, 0.0, 40000)
    assert cfg.train_cfg.max_iters == 40000 and cfg.train_cfg.val_interval == 4000
    assert cfg.train_dataloader.batch_size == 1
    assert cfg.default_hooks.checkpoint.interval == 10000
    assert cfg.default_hooks.checkpoint.max_keep_ckpts == -1
    assert cfg.default_hooks.logger.interval == 50 and cfg.randomness.seed == 0
    data = cfg.train_dataloader.dataset
    assert data.type == 'DGDataset' and data.rare_class_sampling == dict(
        min_pixels=3000, class_temp=0.01, min_crop_ratio=0.5)
    steps = {t.type: t for t in data.source.pipeline}
    assert 'PhotoMetricDistortion' in steps and steps['RandomCrop'].crop_size == (512, 512)
    assert steps['Resize'].scale == (1280, 720)
    assert cfg.model.train_cfg.ipkl == dict(enabled=True, consistency_weight=1.0)
    assert cfg.model.test_cfg.mode == 'whole'
    val = {t.type: t for t in cfg.val_dataloader.dataset.pipeline}
    assert cfg.val_dataloader.dataset.type == 'CityscapesDataset'
    assert val['Resize'].scale == (1024, 512)


@pytest.mark.parametrize('exp_id', sorted(EXPERIMENTS))
def test_every_experiment_generates_loadable_configs(exp_id, generated):
    run_experiments.main(['--exp', str(exp_id), '--dry-run'])
    paths = generated(exp_id)
    assert len(paths) == len(EXPERIMENTS[exp_id].variants) * len(EXPERIMENTS[exp_id].seeds)
    for path in paths:
        cfg = Config.fromfile(str(path))
        assert cfg.work_dir.endswith(path.stem) and 'model' in cfg


def test_exp50_without_data_names_root_and_converter(generated, monkeypatch, tmp_path):
    if (REPO / 'data' / 'gta').exists():
        pytest.skip('data/gta exists here')
    from mmseg.apis import MissingInputError
    with pytest.raises(MissingInputError, match=r'(?s)data/gta.*tools/convert_datasets/gta\.py'):
        run_experiments.main(['--exp', '50'])
