"""tools/make_tiny_sd.py --family: per-family differences, and the VAE shortcut changes nothing."""
import json

import pytest

from tools.make_tiny_sd import FAMILIES, main, make_tiny_sd


def _bytes(folder, component):
    return {p.name: p.read_bytes() for p in sorted((folder / component).iterdir())}


def test_copied_vae_equals_a_calibrated_one(tiny_sd_family, tmp_path):
    """``vae_from`` copies the VAE instead of calibrating it: the same bytes as writing it."""
    written = make_tiny_sd(tmp_path / 'sd15', seed=0, family='sd15')
    assert _bytes(written, 'vae') == _bytes(tiny_sd_family('sd15'), 'vae')
    assert _bytes(written, 'unet') == _bytes(tiny_sd_family('sd15'), 'unet')


def test_family_configs(tiny_sd_family, tiny_sd_dir):
    def config(folder, name):
        return json.loads((folder / name).read_text())
    base = tiny_sd_family('sd21-base')
    assert config(base, 'scheduler/scheduler_config.json')['prediction_type'] == 'epsilon'
    assert not config(base, 'unet/config.json')['upcast_attention']
    assert config(tiny_sd_dir, 'unet/config.json')['upcast_attention']
    sd15 = tiny_sd_family('sd15')
    assert config(sd15, 'scheduler/scheduler_config.json')['_class_name'] == 'PNDMScheduler'
    assert config(sd15, 'model_index.json')['scheduler'] == ['diffusers', 'PNDMScheduler']
    assert config(sd15, 'text_encoder/config.json')['hidden_act'] == 'quick_gelu'
    assert set(FAMILIES) == {'sd15', 'sd20', 'sd21', 'sd21-base'}


def test_unknown_family_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="unknown family 'sdxl'"):
        make_tiny_sd(tmp_path / 'x', family='sdxl')
    with pytest.raises(SystemExit):
        main([str(tmp_path / 'y'), '--family', 'sdxl'])
