"""tools/get_param_count.py: per-experiment and per-family parameters, widths and UNet usage."""
import pytest

from tools.get_param_count import (config_rows, diff_rows, load_experiment_config, main,
                                   unet_usage)
from tools.get_param_count import REPO_ROOT as REPO


def _parts(rows):
    return {name.split(' ')[0]: (trainable, frozen) for name, trainable, frozen in rows}


def test_real_family_architectures_on_the_meta_device():
    """Published sizes: SD 1.5's UNet 859.5 M and CLIP ViT-L text tower 123.1 M; SD 2.x's
    UNet 865.9 M and OpenCLIP-H text tower 340.4 M; the recorded widths are the same."""
    yaml_path = REPO / 'diff_config.yaml'
    sd15_rows, sd15_widths = diff_rows(yaml_path, {}, family='sd15')
    sd20_rows, sd20_widths = diff_rows(yaml_path, {}, family='sd20')
    sd15, sd20 = _parts(sd15_rows), _parts(sd20_rows)
    assert sd15['unet'] == (0, 859_520_964) and sd15['text_encoder'] == (0, 123_060_480)
    assert sd20['unet'] == (0, 865_910_724) and sd20['text_encoder'] == (0, 340_387_840)
    assert sd15_widths == sd20_widths
    assert 'stride 8: 17,280 = 9 steps x 1,920' in sd15_widths[0]
    with pytest.raises(ValueError, match='expected one of'):
        diff_rows(yaml_path, {}, family='sd3')


def test_sdxl_architecture_on_the_meta_device():
    """SD XL base 1.0: UNet 2,567.5 M, text towers 123.1 M (CLIP ViT-L) and 694.7 M
    (OpenCLIP bigG with projection); three recorded levels, no transformer blocks at stride 8;
    the family is taken from the file's name."""
    rows, widths = diff_rows(REPO / 'configs' / 'diff_configs' / 'sdxl.yaml', {})
    parts = _parts(rows)
    assert parts['unet'] == (0, 2_567_463_684)
    assert parts['text_encoder'] == (0, 123_060_480)
    assert parts['text_encoder_2'] == (0, 694_659_840)
    assert parts['vae'] == (0, 34_163_684)  # SD's VAE encoder
    assert widths[0] == ('recorded feature channels (all saved steps): stride 8: 8,640 = 9 steps '
                         'x 960, stride 16: 34,560 = 9 steps x 3,840, stride 32: 69,120 = 9 '
                         'steps x 7,680')


def test_ablation_widths_and_parameters_per_experiment():
    exp51 = _parts(config_rows(load_experiment_config(51))[0])
    small_rows, small_widths = config_rows(load_experiment_config(83))
    small = _parts(small_rows)
    assert small_widths[1] == 'backbone outputs: stride 4: 64, stride 8: 128, stride 16: 320, ' \
                              'stride 32: 512'
    for part in ('aggregation.stride8', 'aggregation.stride32', 'finecoder', 'decode_head'):
        assert small[part][0] < exp51[part][0], part
    resnet_only = config_rows(load_experiment_config(82))[1][0]
    assert 'stride 8: 8,640 = 9 steps x 960' in resnet_only  # 3 ResNets x 320, no blocks
    steps5 = config_rows(load_experiment_config(80))[1][0]
    assert 'stride 8: 9,600 = 5 steps x 1,920' in steps5


def test_mit_baseline_counts_the_b5_encoder(capsys):
    if (REPO / 'checkpoints' / 'mit-b5').exists():
        pytest.skip('a real checkpoints/mit-b5 is present')
    assert main(['--exp', '90']) == 0
    out = capsys.readouterr().out
    assert 'mit encoder (trained)' in out and '81,443,008' in out
    assert 'stride 4: 64, stride 8: 128, stride 16: 320, stride 32: 512' in out
    assert 'UNet per step: none' in out


@pytest.mark.parametrize('exp_id, train, evaluation', [
    (80, (5, 35), (5, 5)),      # 5 steps; IPKL merged: 1 + 5 prompted + 1 label-free rows
    (81, (1, 7), (1, 1)),       # 1 step
    (86, (34, 34), (34, 34)),   # no IPKL: one label-free pass
])
def test_unet_calls_and_rows_per_step(exp_id, train, evaluation, tiny_sd_dir):
    usage = unet_usage(load_experiment_config(exp_id), tiny_dir=tiny_sd_dir)
    assert usage == {'training step': train, 'evaluation image': evaluation}
