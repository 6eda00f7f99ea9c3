"""tools/train.py: exp 50's config trains on synthetic data; exact resume; clear input errors."""
import os

import pytest
import torch
import yaml

from mmseg.apis import MissingInputError
from test_tools.workspace import DEMO, EXP50, SHORT_TIMESTEPS, demo_options
from tools.train import main as train_main


@pytest.fixture
def in_workspace(workspace):
    cwd = os.getcwd()
    os.chdir(workspace)
    yield workspace
    os.chdir(cwd)


def exp50_options(data, tiny_sd_dir, iters=2):
    """Exp 50's config on synthetic data in the real layouts, scaled to the tiny model."""
    src = 'train_dataloader.dataset.source'
    return [
        f'{src}.data_root={data}/gta/', f'val_dataloader.dataset.data_root={data}/cityscapes/',
        'val_dataloader.dataset.indices=2', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        # small images: scale the crop, the resize and the RCS pixel threshold down
        f'{src}.pipeline.2.scale=(256,144)', f'{src}.pipeline.3.crop_size=(128,128)',
        'val_dataloader.dataset.pipeline.1.scale=(256,128)',
        'train_dataloader.dataset.rare_class_sampling.min_pixels=200',
        # the tiny model: tiny SD folder, narrow trainable widths
        f'model.backbone.overrides.model_id={tiny_sd_dir}', *SHORT_TIMESTEPS,
        'model.backbone.overrides.projection_channels=[64,128,128]',
        'model.backbone.overrides.stride4_channels=32',
        'model.decode_head.in_channels=[32,64,128,128]', 'model.decode_head.channels=32',
        'model.decode_head.decoder_params.embed_dims=32',
        f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
        f'default_hooks.checkpoint.interval={iters}']


def test_exp50_config_trains_evaluates_and_saves_trainable_weights_only(
        tmp_path, synthetic_data_root, tiny_sd_dir):
    work_dir = tmp_path / 'exp50'
    metrics = train_main([str(EXP50), '--work-dir', str(work_dir), '--cfg-options',
                          *exp50_options(synthetic_data_root, tiny_sd_dir)])
    assert 0.0 <= metrics['cityscapes/mIoU'] <= 100.0
    ckpt = torch.load(work_dir / 'iter_2.pth', weights_only=True)
    keys = list(ckpt['state_dict'])
    assert any(k.startswith('decode_head.') for k in keys)
    assert any(k.startswith('backbone.') for k in keys)  # aggregation + finecoder
    frozen = ('unet', 'vae', 'text_encoder')
    assert not [k for k in keys if any(f'.{part}.' in k for part in frozen)]
    assert ckpt['meta']['iter'] == 2
    resolved = yaml.safe_load((work_dir / 'diff_config.resolved.yaml').read_text())
    assert resolved['model_id'] == str(tiny_sd_dir) and resolved['timesteps'] == [20, 8, 4]
    assert 'git_rev' in (work_dir / 'diff-daformer_sd21_srconly-40k_gta2cs-512x512.py').read_text()
    # the optimiser holds only trainable parameters: head group at 10x the base lr
    groups = ckpt['optimizer']['param_groups']
    assert sorted(g['lr'] / groups[0]['lr'] for g in groups) in ([1.0, 10.0], [0.1, 1.0])


def _state(path):
    return torch.load(path, weights_only=True)['state_dict']


def test_resume_equals_uninterrupted_run(in_workspace, tiny_sd_dir):
    common = ['--deterministic', '--cfg-options', *demo_options(tiny_sd_dir, iters=4),
              'default_hooks.checkpoint.interval=2']
    full, half = in_workspace / 'work_dirs' / 'full4', in_workspace / 'work_dirs' / 'half'
    train_main([str(DEMO), '--work-dir', str(full), *common])
    stop_at_2 = [*common, 'train_cfg.max_iters=2']
    train_main([str(DEMO), '--work-dir', str(half), *stop_at_2])
    train_main([str(DEMO), '--work-dir', str(half), '--resume', *common])
    a, b = _state(full / 'iter_4.pth'), _state(half / 'iter_4.pth')
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    assert not all(torch.equal(a[k], _state(half / 'iter_2.pth')[k]) for k in a)


def test_missing_data_names_root_and_converter(tmp_path, tiny_sd_dir):
    with pytest.raises(MissingInputError, match=r'(?s)nowhere/gta.*tools/convert_datasets/gta\.py'):
        train_main([str(EXP50), '--work-dir', str(tmp_path), '--cfg-options',
                    f'train_dataloader.dataset.source.data_root={tmp_path}/nowhere/gta/'])


def test_missing_weights_name_model_id_and_download(tmp_path, synthetic_data_root, tiny_sd_dir):
    options = exp50_options(synthetic_data_root, tiny_sd_dir)
    options = [o for o in options if 'model_id' not in o]
    options.append(f'model.backbone.overrides.model_id={tmp_path}/no-sd21')
    with pytest.raises(MissingInputError, match=r'(?s)model_id.*no-sd21.*stable-diffusion-2-1'):
        train_main([str(EXP50), '--work-dir', str(tmp_path), '--cfg-options', *options])


def test_cli_choices_reach_the_config(tmp_path):
    from mmseg.apis import load_config, prepare_train_config
    cfg = prepare_train_config(load_config(DEMO), work_dir=str(tmp_path), seed=3,
                               deterministic=True, resume='auto', launcher='none')
    assert cfg.randomness == dict(seed=3, deterministic=True) and cfg.work_dir == str(tmp_path)
    assert cfg.resume is True and cfg.load_from is None and cfg.git_rev
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match='--amp needs a CUDA GPU'):
            prepare_train_config(load_config(DEMO), amp=True)


def test_print_config_resolves_bases(tmp_path, capsys):
    from tools.print_config import main as print_main
    text = print_main([str(EXP50), '--cfg-options', 'train_cfg.max_iters=7', '--out',
                       str(tmp_path / 'resolved.py')])
    assert 'max_iters=7' in text and "type='DAFormerHead'" in text
    assert (tmp_path / 'resolved.py').read_text() == text and text in capsys.readouterr().out
