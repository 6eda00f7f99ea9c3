"""One place chooses the target: `target_domains`, run_experiments --target, dry-run configs.

Every resolved config must name the real domains: the val/test loops' main and extra
domains (metric prefixes and prediction folders come from them), the datasets they load
and, for DACS, the adaptation target.
"""
from pathlib import Path

import pytest

import run_experiments
from experiments import EXPERIMENTS, Experiment, expand, target_slug
from mmseg.apis import MissingInputError, check_data, load_config
from mmseg.apis.targets import TargetDomainError

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / 'configs' / 'diff'
EXP50 = CONFIGS / 'diff-daformer_sd21_srconly-40k_gta2cs-512x512.py'
EXP51 = CONFIGS / 'diff-daformer_sd21_srconly-40k_gta2five-512x512.py'
DACS_CS = CONFIGS / 'diff-daformer_sd21_dacs-40k_gta2cs-512x512.py'
DEMO = CONFIGS / 'diff-daformer_tiny_srconly_syn-demo.py'
DATASET = dict(cityscapes=('CityscapesDataset', 'data/cityscapes/'),
               acdc=('ACDCDataset', 'data/acdc/'),
               dark_zurich=('DarkZurichDataset', 'data/dark_zurich/'),
               bdd100k=('BDD100KDataset', 'data/bdd100k/'),
               mapillary=('MapillaryDataset', 'data/mapillary/'))
FIVE = ['cityscapes', 'acdc', 'dark_zurich', 'bdd100k', 'mapillary']


def evaluated(cfg, stage='val'):
    """{domain: (dataset type, data_root)} of a resolved loop, main domain first."""
    loop = cfg[f'{stage}_cfg']
    assert loop.type == dict(val='MultiValLoop', test='MultiTestLoop')[stage]
    loaders = {loop.domain: cfg[f'{stage}_dataloader'], **loop.extra_domains}
    return {d: (ld.dataset.type, ld.dataset.data_root) for d, ld in loaders.items()}


@pytest.mark.parametrize('config, default', [(EXP50, ['cityscapes']), (EXP51, FIVE),
                                             (DEMO, ['cityscapes', 'acdc', 'dark_zurich'])])
def test_default_choice_is_what_the_file_states(config, default):
    cfg = load_config(config)
    assert cfg.target_domains == default
    for stage in ('val', 'test'):
        assert list(evaluated(cfg, stage)) == default


@pytest.mark.parametrize('targets', [['acdc'], ['dark_zurich', 'bdd100k'], ['all']])
def test_dg_target_key_names_loops_after_the_real_domains(targets):
    cfg = load_config(EXP50, {'target_domains': targets})
    expected = FIVE if targets == ['all'] else targets
    for stage in ('val', 'test'):
        assert evaluated(cfg, stage) == {d: DATASET[d] for d in expected}
    assert cfg.train_dataloader.dataset.type == 'DGDataset'  # training is untouched


@pytest.mark.parametrize('target', ['acdc', 'dark_zurich', 'mapillary'])
def test_dacs_target_key_sets_adaptation_target_and_evaluation(target):
    cfg = load_config(DACS_CS, {'target_domains': [target]})
    assert evaluated(cfg) == {target: DATASET[target]} == evaluated(cfg, 'test')
    uda_target = cfg.train_dataloader.dataset.target
    assert (uda_target.type, uda_target.data_root) == DATASET[target]
    assert 'train' in str(uda_target.get('sub_dirs') or uda_target.data_prefix.img_path) or \
        'training' in uda_target.data_prefix.img_path


def test_release_dacs_configs_keep_their_target():
    for suffix, domain in (('cs', 'cityscapes'), ('acdc', 'acdc'), ('dzur', 'dark_zurich')):
        cfg = load_config(CONFIGS / f'diff-daformer_sd21_dacs-40k_gta2{suffix}-512x512.py')
        assert cfg.target_domains == [domain] and list(evaluated(cfg)) == [domain]
        assert cfg.train_dataloader.dataset.target.type == DATASET[domain][0]


def test_dropping_a_domain_and_hand_set_domains():
    cfg = load_config(EXP51, {'test_cfg.extra_domains.acdc': None})
    assert list(evaluated(cfg, 'test')) == ['cityscapes', 'dark_zurich', 'bdd100k', 'mapillary']
    assert list(evaluated(cfg)) == FIVE  # only the test loop was asked to drop it
    # overrides of a generated loader still apply
    cfg = load_config(EXP51, {'val_cfg.extra_domains.acdc.dataset.indices': 2})
    assert cfg.val_cfg.extra_domains.acdc.dataset.indices == 2
    with pytest.raises(TargetDomainError, match=r"test_cfg.domain='acdc'.*target_domains"):
        load_config(EXP50, {'test_cfg.domain': 'acdc'})
    with pytest.raises(TargetDomainError, match=r'unknown domain\(s\) \[.gta.\].*cityscapes'):
        load_config(EXP50, {'target_domains': ['gta']})


def test_test_split_uses_unlabelled_test_sets():
    cfg = load_config(EXP51, {'test_split': 'test', 'target_domains': ['cityscapes', 'acdc',
                                                                        'dark_zurich']})
    loaders = {cfg.test_cfg.domain: cfg.test_dataloader, **cfg.test_cfg.extra_domains}
    for domain, loader in loaders.items():
        assert 'seg_map_path' not in loader.dataset.data_prefix, domain
        assert 'LoadAnnotations' not in [t.type for t in loader.dataset.pipeline], domain
    assert loaders['acdc'].dataset.sub_dirs == ['fog/test', 'night/test', 'rain/test',
                                                'snow/test']
    assert cfg.val_dataloader.dataset.data_prefix.seg_map_path == 'gtFine/val'  # val untouched
    with pytest.raises(TargetDomainError, match=r"\['bdd100k'\] have no test split"):
        load_config(EXP51, {'test_split': 'test', 'target_domains': ['acdc', 'bdd100k']})


def test_preflight_lists_every_missing_dataset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no data/ here: every dataset is missing
    cfg = load_config(EXP51)
    with pytest.raises(MissingInputError) as error:
        check_data(cfg, ('train', 'val'))
    message = str(error.value)
    for name in ('GTADataset', 'CityscapesDataset', 'ACDCDataset', 'DarkZurichDataset',
                 'BDD100KDataset', 'MapillaryDataset'):
        assert message.count(f'({name})') == 1, name
    assert 'val_cfg.extra_domains.mapillary' in message


def test_expand_seeds_and_target_runs_are_named():
    exp = EXPERIMENTS[0]
    cfgs = expand(0, exp, '250101_0000', seeds=[0, 1, 2], target_runs=[['acdc', 'dark_zurich']])
    assert [c['seed'] for c in cfgs] == [0, 1, 2]
    assert [c['randomness']['seed'] for c in cfgs] == [0, 1, 2]
    assert all(c['target_domains'] == ['acdc', 'dark_zurich'] for c in cfgs)
    assert all('_to-acdc-dzur_s' in c['name'] for c in cfgs)
    assert target_slug(['cityscapes', 'bdd100k', 'mapillary']) == 'to-cs-bdd-map'
    assert [c['seed'] for c in expand(50, EXPERIMENTS[50], '250101_0000')] == [0]
    assert [c['seed'] for c in expand(51, EXPERIMENTS[51], '250101_0000')] == [0]


@pytest.fixture
def generated(tmp_path, monkeypatch):
    """run_experiments writes under a private root (configs/diff and _base_ linked in)."""
    (tmp_path / 'configs').mkdir()
    for name in ('diff', '_base_'):
        (tmp_path / 'configs' / name).symlink_to(REPO / 'configs' / name)
    monkeypatch.setattr(run_experiments, 'ROOT', tmp_path)
    yield lambda exp_id: sorted((tmp_path / 'configs/generated' / f'local-exp{exp_id}')
                                .glob('*.py'))


@pytest.mark.parametrize('exp_id, target, runs, seeds', [
    (0, ['bdd100k', 'mapillary'], [['bdd100k', 'mapillary']], [0, 1]),
    (51, ['acdc'], [['acdc']], [0]),
    (50, ['all'], [FIVE], [0]),
    (60, ['acdc', 'dark_zurich'], [['acdc'], ['dark_zurich']], [0]),  # DACS: a run per target
    (62, ['cityscapes'], [['cityscapes']], [0]),
    (70, ['acdc'], [['acdc']], [0]),  # the synthetic DACS benchmark
])
def test_dry_run_target_choices(exp_id, target, runs, seeds, generated):
    run_experiments.main(['--exp', str(exp_id), '--dry-run', '--seeds', *map(str, seeds),
                          '--target', *target])
    paths = generated(exp_id)
    assert len(paths) == len(seeds) * len(runs)
    by_targets = {}
    for path in paths:
        cfg = load_config(path)
        assert cfg.work_dir.endswith(path.stem)
        by_targets.setdefault(tuple(cfg.target_domains), []).append(cfg)
        if exp_id in (60, 61, 62):  # DACS: named like the experiment of that target
            abbreviation = target_slug(cfg.target_domains)[len('to-'):]
            assert f'_gta2{abbreviation}-512x512_s{cfg.seed}_' in path.stem
        else:
            assert f'_{target_slug(cfg.target_domains)}_s{cfg.seed}_' in path.stem
        assert list(evaluated(cfg)) == cfg.target_domains == list(evaluated(cfg, 'test'))
        if exp_id >= 60:
            assert cfg.train_dataloader.dataset.target.type == \
                evaluated(cfg)[cfg.target_domains[0]][0]
    assert sorted(by_targets) == sorted(tuple(r) for r in runs)
    assert all(sorted(c.seed for c in v) == seeds for v in by_targets.values())


def test_target_flag_errors(generated):
    with pytest.raises(SystemExit):  # argparse: not a domain
        run_experiments.main(['--exp', '51', '--dry-run', '--target', 'gta'])
    with pytest.raises(TargetDomainError, match='no target_domains key'):
        run_experiments.target_runs(Experiment('x', 'configs/_base_/datasets/gta_512x512.py'),
                                    ['acdc'])


def test_evaluation_only_choice_keeps_the_training_data():
    syn_dacs = CONFIGS / 'diff-daformer_tiny_dacs_syn2night.py'
    cfg = load_config(syn_dacs)
    assert cfg.train_dataloader.dataset.target.data_root == 'data/synthetic/dark_zurich/'
    assert load_config(syn_dacs, {'target_domains': ['acdc']}).train_dataloader.dataset.target \
        .data_root == 'data/synthetic/acdc/'
    cfg = load_config(syn_dacs, {'target_domains': ['acdc'], 'targets_for_evaluation_only': True})
    assert list(evaluated(cfg, 'test')) == ['acdc']
    assert cfg.train_dataloader.dataset.target.data_root == 'data/synthetic/dark_zurich/'
    with pytest.raises(TargetDomainError, match='no uda_target_datasets'):
        load_config(syn_dacs, {'target_domains': ['acdc'], 'uda_target_datasets': None})


def test_table_columns_add_subsets_after_their_domain():
    from mmseg.engine.loops import format_domain_table, table_columns
    metrics = {'cityscapes/mIoU': 1.0, 'acdc/mIoU': 2.0, 'acdc/fog/mIoU': 3.0,
               'acdc/night/mIoU': 4.0, 'acdc/fog/IoU.road': 5.0, 'dark_zurich/mIoU': 6.0}
    columns = table_columns(metrics, ['cityscapes', 'acdc', 'dark_zurich'])
    assert columns == ['cityscapes', 'acdc', 'acdc/fog', 'acdc/night', 'dark_zurich']
    table = format_domain_table(metrics, columns)
    assert table.splitlines()[-1].split() == ['mIoU', '|', '1.00', '|', '2.00', '|', '3.00', '|',
                                              '4.00', '|', '6.00']
