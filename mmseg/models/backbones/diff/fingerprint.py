"""A fingerprint of a diffusers-format Stable Diffusion folder, cheap enough for every run.

Training records it in checkpoints and evaluation compares it, so a checkpoint is never used
silently with another frozen model than the one it was trained on. Hashing all weights of SD 2.1
(about 5 GB) would take a minute; instead every component contributes its config files, and
every weight file its size, its safetensors header (tensor names, dtypes, shapes, offsets) and
three 1 MiB samples of its bytes (start, middle, end). Two folders with the same architecture
but other weights (another fine-tune, another seed) differ in the samples.
"""
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Dict, Union

COMPONENTS = ('unet', 'vae', 'text_encoder', 'tokenizer', 'scheduler', 'text_encoder_2',
              'tokenizer_2')  # the last two: only in folders with a second text tower
WEIGHT_SUFFIXES = ('.safetensors', '.bin', '.pt', '.pth', '.ckpt')
SAMPLE_BYTES = 1 << 20


def fingerprint_sd_folder(folder: Union[str, os.PathLike]) -> Dict[str, Any]:
    """Fingerprint of the Stable Diffusion folder ``folder``.

    Returns:
        ``dict(sha256=<64 hex digits>, unet=<architecture summary>, prediction_type=...)``:
        plain types only, so it can be stored in a checkpoint and compared with ``==``.

    Raises:
        FileNotFoundError: ``folder`` is not a directory.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f'Stable Diffusion folder not found: {root}')
    digest = hashlib.sha256()
    for component in COMPONENTS:
        base = root / component
        if not base.is_dir():
            continue
        for path in sorted(p for p in base.rglob('*') if p.is_file()):
            name = path.relative_to(root).as_posix()
            digest.update(name.encode('utf-8') + b'\0')
            if path.suffix in WEIGHT_SUFFIXES:
                _update_with_weights(digest, path)
            elif path.suffix in ('.json', '.txt', '.model'):
                digest.update(path.read_bytes())
    unet = _read_json(root / 'unet' / 'config.json')
    scheduler = _read_json(root / 'scheduler' / 'scheduler_config.json')
    return dict(sha256=digest.hexdigest(),
                unet={key: unet.get(key) for key in (
                    'block_out_channels', 'cross_attention_dim', 'attention_head_dim',
                    'sample_size', 'in_channels', 'layers_per_block')},
                prediction_type=scheduler.get('prediction_type'))


def _update_with_weights(digest: 'hashlib._Hash', path: Path) -> None:
    size = path.stat().st_size
    digest.update(str(size).encode() + b'\0')
    with open(path, 'rb') as stream:
        if path.suffix == '.safetensors' and size >= 8:
            header_size = int.from_bytes(stream.read(8), 'little')
            if 0 < header_size <= size - 8:
                digest.update(stream.read(header_size))
        for start in sorted({0, max(size // 2 - SAMPLE_BYTES // 2, 0),
                             max(size - SAMPLE_BYTES, 0)}):
            stream.seek(start)
            digest.update(stream.read(SAMPLE_BYTES))


def _read_json(path: Path) -> Dict[str, Any]:
    try:
        with open(path, encoding='utf-8') as stream:
            data = json.load(stream)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
