"""DACS with the real DIFF backbone on the tiny SD: one frozen UNet, and a Runner smoke run."""
from pathlib import Path

import torch
from mmengine.config import Config

from mmseg.registry import MODELS
from tests.test_models.test_uda.uda_helpers import storage_ids
from tools import train as train_tool

REPO = Path(__file__).resolve().parents[3]
SYN_DACS = REPO / 'configs/diff/diff-daformer_tiny_dacs_syn2night.py'
SYN_SRC = REPO / 'configs/diff/diff-daformer_tiny_srconly_syn2night.py'


def data_options(data_root: Path, tiny_sd_dir: Path) -> dict:
    """Point the synthetic config at the fixtures' data and tiny SD."""
    return {
        'train_dataloader.dataset.source.data_root': str(data_root / 'gta'),
        'train_dataloader.dataset.target.data_root': str(data_root / 'dark_zurich'),
        'val_dataloader.dataset.data_root': str(data_root / 'dark_zurich'),
        'model.model.backbone.overrides.model_id': str(tiny_sd_dir),
    }


def test_frozen_unet_is_stored_once_in_student_and_teacher(tiny_sd_dir):
    cfg = Config.fromfile(str(SYN_DACS))
    cfg.merge_from_dict({'model.model.backbone.overrides.model_id': str(tiny_sd_dir)})
    model = MODELS.build(cfg.model)
    unet = model.model.backbone.encoder.extractor.unet
    assert all(not p.requires_grad for p in unet.parameters())
    student = [p for _, p in model.model.named_parameters(remove_duplicate=False)]
    teacher = [p for _, p in model.teacher.named_parameters(remove_duplicate=False)]
    buffers = [b for _, b in model.named_buffers(remove_duplicate=False)]
    everything = storage_ids(student + teacher + buffers)
    for param in unet.parameters():
        assert everything.count(storage_ids([param])[0]) == 1
    # The teacher adds exactly one storage per trainable tensor (and BN statistic) it keeps.
    trainable = [p for p in student if p.requires_grad]
    assert len(teacher) == len(trainable)
    assert len(set(storage_ids(student + teacher))) == len(set(storage_ids(student))) + len(
        teacher)
    assert not any('unet' in name for name in model.teacher.state_dict())


def test_two_iterations_through_the_runner_write_debug_images(tmp_path, synthetic_data_root,
                                                             tiny_sd_dir):
    options = data_options(synthetic_data_root, tiny_sd_dir)
    options.update({'train_cfg.max_iters': 2, 'train_cfg.val_interval': 2,
                    'model.debug_img_interval': 1, 'default_hooks.logger.interval': 1})
    argv = [str(SYN_DACS), '--work-dir', str(tmp_path)]
    argv += ['--cfg-options'] + [f'{k}={v}' for k, v in options.items()]
    torch.manual_seed(0)
    metrics = train_tool.main(argv)
    assert any(key.endswith('mIoU') for key in metrics)
    debug = sorted(p.name for p in (tmp_path / 'debug').glob('*.png'))
    assert debug == ['000000_0.png', '000000_1.png', '000001_0.png', '000001_1.png']


def test_source_only_config_is_the_dacs_config_without_adaptation():
    dacs, source_only = Config.fromfile(str(SYN_DACS)), Config.fromfile(str(SYN_SRC))
    assert source_only.model.source_only and not dacs.model.source_only
    source_only.model.source_only = False
    assert source_only.to_dict() == dacs.to_dict()
