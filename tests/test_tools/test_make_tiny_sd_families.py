"""tools/make_tiny_sd.py --family: per-family differences (SD XL's second text tower and
added embedding included), and the VAE shortcut changes nothing."""
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
    assert set(FAMILIES) == {'sd15', 'sd20', 'sd21', 'sd21-base', 'sdxl'}


def test_sdxl_folder_has_the_second_tower_and_the_text_time_unet(tiny_sd_family):
    """SD XL's layout at tiny widths: two text towers whose widths add up to the UNet's
    cross-attention, and an added embedding sized for the pooled width and six time ids."""
    def config(name):
        return json.loads((folder / name).read_text())
    folder = tiny_sd_family('sdxl')
    index = config('model_index.json')
    assert index['_class_name'] == 'StableDiffusionXLPipeline'
    assert index['text_encoder_2'] == ['transformers', 'CLIPTextModelWithProjection']
    assert index['tokenizer_2'] == ['transformers', 'CLIPTokenizer']
    unet, first, second = (config(f'{c}/config.json')
                           for c in ('unet', 'text_encoder', 'text_encoder_2'))
    assert unet['up_block_types'] == ['CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'UpBlock2D']
    assert unet['cross_attention_dim'] == first['hidden_size'] + second['hidden_size'] == 48
    assert unet['addition_embed_type'] == 'text_time'
    assert unet['projection_class_embeddings_input_dim'] == (
        second['projection_dim'] + 6 * unet['addition_time_embed_dim'])
    assert second['architectures'] == ['CLIPTextModelWithProjection']
    assert (first['hidden_act'], second['hidden_act']) == ('quick_gelu', 'gelu')
    assert config('tokenizer_2/tokenizer_config.json')['pad_token'] == '!'
    scheduler = config('scheduler/scheduler_config.json')
    assert (scheduler['_class_name'], scheduler['prediction_type']) == (
        'EulerDiscreteScheduler', 'epsilon')


def test_unknown_family_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="unknown family 'sd3'"):
        make_tiny_sd(tmp_path / 'x', family='sd3')
    with pytest.raises(SystemExit):
        main([str(tmp_path / 'y'), '--family', 'sd3'])
