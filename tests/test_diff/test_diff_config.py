"""DIFFConfig: YAML round trip, validation errors naming the key, path resolution."""
import dataclasses
from pathlib import Path

import pytest
import yaml
from diff_helpers import diff

REPO_ROOT = Path(__file__).resolve().parents[2]
DIFFConfig, ConfigError = diff.DIFFConfig, diff.ConfigError


def test_repository_yaml_sets_every_key_to_the_release_values():
    path = REPO_ROOT / 'diff_config.yaml'
    keys = set(yaml.safe_load(path.read_text()))
    assert keys == {f.name for f in dataclasses.fields(DIFFConfig)}
    config = DIFFConfig.from_yaml(path)
    assert config.model_id == str(REPO_ROOT / 'checkpoints' / 'stable-diffusion-2-1')
    assert config == DIFFConfig(model_id=config.model_id)  # defaults = the release
    assert len(config.timesteps) == 37 and config.timesteps[:3] == [160, 139, 121]
    assert config.timesteps[13:] == list(range(26, 27)) + list(range(23, 0, -1))
    assert sorted(config.label_prompts) == [1, 3, 12, 14, 16]


def test_relative_model_id_resolves_against_the_yaml_file(tmp_path, monkeypatch):
    folder = tmp_path / 'configs'
    folder.mkdir()
    (folder / 'diff.yaml').write_text('model_id: ../weights/sd\n')
    monkeypatch.chdir(REPO_ROOT)
    config = DIFFConfig.from_yaml(folder / 'diff.yaml')
    assert config.model_id == str(tmp_path / 'weights' / 'sd')
    overridden = DIFFConfig.from_yaml(folder / 'diff.yaml', model_id='other', eta=0.5)
    assert overridden.model_id == str(folder / 'other') and overridden.eta == 0.5
    assert DIFFConfig.from_yaml(folder / 'diff.yaml', model_id='/abs/sd').model_id == '/abs/sd'


def test_round_trip_through_yaml(tmp_path):
    config = DIFFConfig(model_id=str(tmp_path), aggregation_type='mixing', saved_steps=[5, 1])
    path = tmp_path / 'round.yaml'
    path.write_text(yaml.safe_dump(config.to_dict()))
    assert DIFFConfig.from_yaml(path) == config


@pytest.mark.parametrize('text, key', [
    ('save_timestep: [3]\n', 'save_timestep'),
    ('guidance: 5\n', 'guidance'),
])
def test_unknown_key_is_an_error_naming_it(tmp_path, text, key):
    path = tmp_path / 'bad.yaml'
    path.write_text(text)
    with pytest.raises(ConfigError, match=key):
        DIFFConfig.from_yaml(path)


def test_unknown_override_is_an_error(tmp_path):
    path = tmp_path / 'ok.yaml'
    path.write_text('eta: 1.0\n')
    with pytest.raises(ConfigError, match='overrides.*scheduler_timesteps'):
        DIFFConfig.from_yaml(path, scheduler_timesteps=[3])


def test_removed_optimize_key_is_one_clear_error(tmp_path):
    path = tmp_path / 'old.yaml'
    path.write_text('optimize: false\n')
    for load in (lambda: DIFFConfig.from_yaml(path),
                 lambda: DIFFConfig.from_yaml(tmp_path / 'ok.yaml', optimize=True)):
        (tmp_path / 'ok.yaml').write_text('eta: 1.0\n')
        with pytest.raises(ConfigError, match="'optimize' was removed.*delete the key") as error:
            load()
        assert '\n' not in str(error.value)


@pytest.mark.parametrize('key, value', [
    ('compile', 1), ('timesteps', 'abc'), ('saved_steps', [1.5]), ('eta', 'x'),
    ('label_prompts', {'one': 'text'}), ('resnet_indices', [[0, 'a']]), ('prompt', None),
])
def test_wrong_type_is_an_error_naming_the_key(tmp_path, key, value):
    path = tmp_path / 'bad.yaml'
    path.write_text(yaml.safe_dump({key: value}))
    with pytest.raises(ConfigError, match=f"'{key}'") as error:
        DIFFConfig.from_yaml(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize('changes, key', [
    (dict(dtype='half'), 'dtype'),
    (dict(unet_output='v'), 'unet_output'),
    (dict(aggregation_type='vanilla'), 'aggregation_type'),
    (dict(timesteps=[1, 2, 3]), 'timesteps'),
    (dict(saved_steps=[40]), 'saved_steps'),
    (dict(saved_steps=[3, 3]), 'saved_steps'),
    (dict(projection_channels=[1, 2]), 'projection_channels'),
    (dict(projection_channels=[64, 128, 96]), 'projection_channels'),
    (dict(stride4_channels=48), 'stride4_channels'),
    (dict(resnet_indices=[[0, 0, 0]]), 'resnet_indices'),
    (dict(resnet_indices=[], transformer_indices=[]), 'resnet_indices'),
])
def test_invalid_values_are_errors_naming_the_key(changes, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        DIFFConfig(**changes)


def test_missing_yaml_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.yaml'):
        DIFFConfig.from_yaml(tmp_path / 'nope.yaml')
