"""Checks before the model build: missing data and weights are named with the fix."""
import pytest
from mmengine.config import Config

from mmseg.apis import MissingInputError, check_data, check_weights
from mmseg.apis.preflight import check_inputs
from test_tools.workspace import EXP50


def test_check_data_names_each_missing_root(tmp_path, synthetic_data_root):
    cfg = Config.fromfile(str(EXP50))
    cfg.train_dataloader.dataset.source.data_root = str(synthetic_data_root / 'gta')
    cfg.val_dataloader.dataset.data_root = str(tmp_path / 'cs')
    with pytest.raises(MissingInputError,
                       match=r'val_dataloader.dataset \(CityscapesDataset\): data root .*cs does '
                             r'not exist.*convert_datasets/cityscapes\.py'):
        check_data(cfg, ('train', 'val'))
    cfg.val_dataloader.dataset.data_root = str(synthetic_data_root / 'cityscapes')
    assert len(check_data(cfg, ('train', 'val'))) == 2


def test_check_weights(tmp_path, tiny_sd_dir):
    cfg = Config.fromfile(str(EXP50))
    cfg.model.backbone.overrides = dict(model_id=str(tmp_path / 'sd21'))
    with pytest.raises(MissingInputError, match=r"(?s)model_id '.*sd21' \(from model.backbone.ov"
                                                 r'errides\).*does not exist.*'
                                                 r'python tools/get_sd21.py --out .*sd21'):
        check_weights(cfg)
    (tmp_path / 'sd21' / 'unet').mkdir(parents=True)
    with pytest.raises(MissingInputError, match=r"lacks \['vae', 'text_encoder'"):
        check_weights(cfg)
    cfg.model.backbone.overrides = dict(model_id=str(tiny_sd_dir))
    assert check_weights(cfg) == [tiny_sd_dir]


def test_check_weights_of_another_family_points_at_its_config(tmp_path):
    cfg = Config.fromfile(str(EXP50))
    cfg.model.backbone.diff_config = 'configs/diff_configs/sd15.yaml'
    cfg.model.backbone.overrides = dict(model_id=str(tmp_path / 'sd15'))
    with pytest.raises(MissingInputError) as error:
        check_weights(cfg)
    message = str(error.value)
    assert 'configs/diff_configs/sd15.yaml' in message and 'get_sd21' not in message
    assert 'Stable Diffusion 2.1' not in message


def test_check_inputs_lists_missing_data_and_weights_together(tmp_path):
    cfg = Config.fromfile(str(EXP50))
    cfg.train_dataloader.dataset.source.data_root = str(tmp_path / 'gta')
    cfg.model.backbone.overrides = dict(model_id=str(tmp_path / 'sd21'))
    with pytest.raises(MissingInputError,
                       match=r'(?s)gta does not exist.*convert_datasets/gta\.py.*\n.*'
                             r"model_id '.*sd21'.*stabilityai/stable-diffusion-2-1"):
        check_inputs(cfg)


def test_invalid_override_is_blamed_on_the_override(tiny_sd_dir):
    from mmseg.models.backbones.diff.config import ConfigError
    cfg = Config.fromfile(str(EXP50))
    cfg.model.backbone.overrides = dict(model_id=str(tiny_sd_dir), guidance_scale=-1.0)
    with pytest.raises(ConfigError) as error:
        check_weights(cfg)
    message = str(error.value)
    assert message.startswith('model.backbone.overrides (given on top of ')
    assert 'guidance_scale' in message and '-1.0' in message


def test_timestep_beyond_the_scheduler_names_the_file(tiny_sd_dir, tmp_path):
    import yaml

    from mmseg.apis.config import REPO_ROOT
    from mmseg.models.backbones.diff.config import ConfigError
    data = yaml.safe_load((REPO_ROOT / 'diff_config.yaml').read_text())
    good = list(data['timesteps'])
    data.update(model_id=str(tiny_sd_dir), timesteps=[1200] + good[1:])
    copy = tmp_path / 'my_diff_config.yaml'
    copy.write_text(yaml.safe_dump(data))
    cfg = Config.fromfile(str(EXP50))
    cfg.model.backbone.diff_config = str(copy)
    cfg.model.backbone.overrides = {}
    with pytest.raises(ConfigError, match=f"^{copy}: DIFF config key 'timesteps': expected "
                                          r'values < 1000 \(num_train_timesteps of .*\), got 1200'):
        check_weights(cfg)
    cfg.model.backbone.overrides = dict(timesteps=good)  # the override fixes it
    assert check_weights(cfg) == [tiny_sd_dir]
