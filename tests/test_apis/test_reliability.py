"""Issue 9: config values and override keys checked at start-up; one-line errors; fingerprints."""
import argparse
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mmseg.apis import load_config
from mmseg.apis.cli import DictAction, parse_value, run_cli
from mmseg.engine.checkpoint import OtherStableDiffusionError, check_sd_fingerprint
from mmseg.engine.validation import UnknownConfigKeyError
from mmseg.models.backbones.diff.config import ConfigError, DIFFConfig

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / 'configs/diff/diff-daformer_tiny_srconly_syn-demo.py'


# --- --cfg-options -----------------------------------------------------------------------

def _parse(*pairs):
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(['--cfg-options', *pairs]).cfg_options


def test_cfg_options_values_keep_their_spaces():
    options = _parse("data_root='my data/gta/'", 'b=my data/x', 'lr=1e6', 'steps=[20,8,4]',
                     'pair=(a, b)', 'flag=true', 'none=None', 'scale=nan', 'list=a,b')
    assert options['data_root'] == 'my data/gta/' and options['b'] == 'my data/x'
    assert options['lr'] == 1e6 and options['steps'] == [20, 8, 4]
    assert options['pair'] == ('a', 'b') and options['flag'] is True and options['none'] is None
    assert np.isnan(options['scale']) and options['list'] == ['a', 'b']
    assert parse_value('"quoted, with comma"') == 'quoted, with comma'


@pytest.mark.parametrize('key,message', [
    ('default_hooks.checkpoint.intervall',
     r"default_hooks\.checkpoint\.intervall: CheckpointHook accepts no argument 'intervall' "
     r"\(did you mean 'interval'\?\)"),
    ('max_iterz', r"max_iterz: no config key 'max_iterz' \(did you mean .*'train_cfg\.max_iters'"),
    ('train_cfg.max_iterz', r"did you mean 'max_iters'"),
    ('model.decode_head.num_clases', r"did you mean 'num_classes'"),
    ('model.backbone.overides.eta', r"DIFF accepts no argument 'overides' \(did you mean "
                                    r"'overrides'\?\)"),
])
def test_unknown_override_keys_fail_at_start_up(key, message):
    with pytest.raises(UnknownConfigKeyError, match=message):
        load_config(DEMO, {key: 1})


def test_known_and_free_override_keys_are_accepted():
    cfg = load_config(DEMO, {
        'train_cfg.max_iters': 2, 'default_hooks.checkpoint.max_keep_ckpts': 1,
        'optim_wrapper.optimizer.lr': 1e-3, 'model.backbone.overrides.eta': 0.5,
        'train_dataloader.dataset.source.data_root': 'my data/gta/', 'val_cfg': None,
        'randomness.deterministic': True, 'allow_other_sd': True,
        'test_dataloader.dataset.indices': 2})
    assert cfg.train_cfg.max_iters == 2 and cfg.model.backbone.overrides.eta == 0.5
    assert cfg.train_dataloader.dataset.source.data_root == 'my data/gta/'


# --- DIFF config values --------------------------------------------------------------------

@pytest.mark.parametrize('changes,key', [
    (dict(guidance_scale=float('nan')), 'guidance_scale'),
    (dict(guidance_scale=-100.0), 'guidance_scale'),
    (dict(eta=5.0), 'eta'), (dict(eta=float('inf')), 'eta'),
    (dict(eta_min_timestep=500), 'eta_min_timestep'),
    (dict(path_control_min_timestep=2000), 'path_control_min_timestep'),
    (dict(label_prompts={-1: 'x'}), 'label_prompts'),
])
def test_diff_config_values_are_checked(changes, key):
    with pytest.raises(ConfigError, match=f"DIFF config key '{key}'"):
        DIFFConfig(**changes)


def test_nan_in_the_yaml_names_the_file(tmp_path):
    (tmp_path / 'diff.yaml').write_text('guidance_scale: .nan\n')
    with pytest.raises(ConfigError, match=r"diff\.yaml: DIFF config key 'guidance_scale': "
                       r'expected a finite number, got nan'):
        DIFFConfig.from_yaml(tmp_path / 'diff.yaml')


def test_label_prompt_outside_the_classes_fails_at_build(tiny_sd_dir):
    from mmseg.apis import segmentor_config
    from mmseg.registry import MODELS
    cfg = load_config(DEMO, {'model.backbone.overrides.model_id': str(tiny_sd_dir)})
    cfg.model.backbone.overrides.label_prompts = {99: 'x'}
    with pytest.raises(ConfigError, match=r"'label_prompts': keys \[99\] are not classes of "
                       r'the decode head \(train ids 0\.\.18\)'):
        MODELS.build(segmentor_config(cfg))


# --- image and label sizes -----------------------------------------------------------------

def test_label_of_another_size_names_both_files(tmp_path):
    from mmseg.datasets.transforms.loading import LoadAnnotations, LoadImageFromFile
    cv2.imwrite(str(tmp_path / 'img.png'), np.zeros((144, 256, 3), np.uint8))
    cv2.imwrite(str(tmp_path / 'lbl.png'), np.zeros((144, 200), np.uint8))
    results = LoadImageFromFile()(dict(img_path=str(tmp_path / 'img.png'),
                                       seg_map_path=str(tmp_path / 'lbl.png')))
    with pytest.raises(ValueError, match=r'lbl\.png is 200x144 .* its image .*img\.png is '
                       r'256x144'):
        LoadAnnotations()(results)


# --- one-line errors -----------------------------------------------------------------------

def _one_line_error(capsys, main, argv):
    with pytest.raises(SystemExit) as info:
        run_cli(main, argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and 'Traceback' not in err
    return err


def test_tools_report_bad_inputs_in_one_line(capsys, tmp_path):
    from tools.publish_model import main as publish_main
    from tools.test import main as test_main
    from tools.train import main as train_main
    err = _one_line_error(capsys, test_main, [str(DEMO), str(tmp_path / 'none.pth')])
    assert 'checkpoint not found' in err
    err = _one_line_error(capsys, train_main, [str(DEMO), '--cfg-options', 'max_iterz=1'])
    assert "did you mean 'max_iters'" in err
    (tmp_path / 'empty.pth').write_bytes(b'')
    err = _one_line_error(capsys, publish_main, [str(tmp_path / 'empty.pth'),
                                                 str(tmp_path / 'out.pth')])
    assert 'is not a checkpoint: the file is empty' in err and 'weights_only' not in err
    nan = tmp_path / 'nan.pth'
    torch.save({'state_dict': {'head.w': torch.full((2, ), float('nan')),
                               'head.b': torch.zeros(2)}}, nan)
    err = _one_line_error(capsys, publish_main, [str(nan), str(tmp_path / 'out.pth')])
    assert 'non-finite' in err and 'head.w (2/2 values)' in err
    assert not list(tmp_path.glob('out*'))


# --- fingerprint of the frozen model -----------------------------------------------------

class _Holder(torch.nn.Module):
    """A module with a DIFF-like ``encoder.config.model_id``."""

    def __init__(self, folder):
        super().__init__()
        self.encoder = torch.nn.Module()
        self.encoder.config = DIFFConfig(model_id=str(folder))


def test_checkpoint_trained_with_another_sd_folder(tiny_sd_dir, tiny_sd_family, caplog):
    model = _Holder(tiny_sd_dir)
    from mmseg.engine.checkpoint import model_sd_record
    record = model_sd_record(model)
    assert record[0]['model_id'] == str(tiny_sd_dir) and len(record[0]['fingerprint']['sha256'])
    same = {'meta': {'stable_diffusion': record}}
    check_sd_fingerprint(same, model, 'same.pth')  # no error, no warning
    other = {'meta': {'stable_diffusion': model_sd_record(_Holder(tiny_sd_family('sd15')))}}
    with pytest.raises(OtherStableDiffusionError) as info:
        check_sd_fingerprint(other, model, 'ckpt.pth')
    text = str(info.value)
    assert 'sd15' in text and str(tiny_sd_dir) in text and '--allow-other-sd' in text
    with caplog.at_level(logging.WARNING):
        check_sd_fingerprint(other, model, 'ckpt.pth', allow_other=True)  # a warning only
        check_sd_fingerprint({'meta': {}}, model, 'old.pth')  # older checkpoint: a warning
