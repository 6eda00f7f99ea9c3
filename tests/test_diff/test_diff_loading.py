"""load_sd_components: the real from_pretrained path, and one clear error per failure."""
import shutil

import pytest
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from diff_helpers import diff
from transformers import CLIPTextModel


def test_loads_the_five_components(tiny_sd_dir):
    parts = diff.load_sd_components(diff.DIFFConfig(model_id=str(tiny_sd_dir)))
    assert isinstance(parts.unet, UNet2DConditionModel)
    assert isinstance(parts.vae, AutoencoderKL)
    assert isinstance(parts.text_encoder, CLIPTextModel)
    assert isinstance(parts.scheduler, DDIMScheduler)
    assert parts.scheduler.config.prediction_type == 'v_prediction'
    assert len(parts.unet.up_blocks) == 4 and len(parts.unet.up_blocks[0].resnets) == 3
    # The tiny tokenizer tells the label prompts apart (docs/pitfalls.md #8).
    prompts = list(diff.DIFFConfig().label_prompts.values()) + ['']
    ids = {tuple(parts.tokenizer(p, padding='max_length', max_length=77).input_ids)
           for p in prompts}
    assert len(ids) == len(prompts)


def _assert_says_what_and_where(error, folder):
    message = str(error.value)
    assert 'stabilityai/stable-diffusion-2-1' in message and 'diffusers' in message
    assert str(folder) in message and 'model_id' in message


def test_missing_folder(tmp_path):
    folder = tmp_path / 'checkpoints' / 'stable-diffusion-2-1'
    with pytest.raises(diff.WeightsNotFoundError) as error:
        diff.load_sd_components(diff.DIFFConfig(model_id=str(folder)))
    _assert_says_what_and_where(error, folder)


def test_hub_id_while_offline(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(diff.WeightsNotFoundError, match='not a local folder') as error:
        diff.load_sd_components(diff.DIFFConfig(model_id='stabilityai/stable-diffusion-2-1'))
    assert 'download' in str(error.value).lower()


def test_folder_lacking_a_component(tiny_sd_dir, tmp_path):
    folder = tmp_path / 'sd'
    shutil.copytree(tiny_sd_dir, folder)
    shutil.rmtree(folder / 'vae')
    with pytest.raises(diff.WeightsNotFoundError, match=r"\['vae'\]") as error:
        diff.load_sd_components(str(folder))
    _assert_says_what_and_where(error, folder)


def test_unreadable_component(tiny_sd_dir, tmp_path):
    folder = tmp_path / 'sd'
    shutil.copytree(tiny_sd_dir, folder)
    for path in (folder / 'unet').iterdir():
        path.unlink()
    with pytest.raises(diff.WeightsNotFoundError, match='Could not load unet'):
        diff.load_sd_components(str(folder))
