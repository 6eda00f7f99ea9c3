"""Turn a training checkpoint into a smaller file to share.

Example::

    python tools/publish_model.py work_dirs/<run>/iter_40000.pth diff_gta2cs.pth
    # -> diff_gta2cs-<first 8 hex digits of sha256>.pth

Kept: the model weights (``state_dict``; the frozen Stable Diffusion weights were never in
it) and ``meta`` (config text, iteration, seed, ...). Dropped: optimiser, parameter
schedulers, message hub, random states, and the state of a UDA wrapper that inference
does not use (the EMA teacher's weights, DACS's iteration counter). The result loads
with ``torch.load(weights_only=True)`` and with ``tools/test.py`` / ``tools/infer.py``.
"""
import argparse
import hashlib
import os
from pathlib import Path
from typing import List, Optional

from mmseg.engine.checkpoint import (check_finite_weights, extract_state_dict,
                                     load_checkpoint_safe, save_checkpoint_atomic)

KEEP = ('meta', )
# Top-level state of training-only sub-modules (anchored prefixes).
TRAINING_ONLY_PREFIXES = ('teacher.', 'ema_model.', 'imnet_model.')
TRAINING_ONLY_KEYS = ('local_iter', )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for block in iter(lambda: stream.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def publish(src: Path, dst: Path) -> Path:
    """Write the slim checkpoint as ``<dst stem>-<sha256[:8]>.pth``; return its path."""
    ckpt = load_checkpoint_safe(src)
    check_finite_weights(extract_state_dict(ckpt), str(src))  # a diverged run is not published
    weights = {k: v for k, v in extract_state_dict(ckpt).items()
               if not k.startswith(TRAINING_ONLY_PREFIXES) and k not in TRAINING_ONLY_KEYS}
    slim = {key: ckpt[key] for key in KEEP if key in ckpt}
    slim['state_dict'] = weights
    tmp = dst.with_name(f'{dst.stem}.unhashed{dst.suffix or ".pth"}')
    save_checkpoint_atomic(slim, tmp)
    final = dst.with_name(f'{dst.stem}-{sha256_of(tmp)[:8]}{dst.suffix or ".pth"}')
    os.replace(tmp, final)
    return final


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Slim a checkpoint for publishing.')
    parser.add_argument('in_file', type=Path, help='training checkpoint (.pth)')
    parser.add_argument('out_file', type=Path, help='output name; the sha256 prefix is added')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> Path:
    args = parse_args(argv)
    out = publish(args.in_file, args.out_file)
    print(f'published {out} ({out.stat().st_size / 2**20:.1f} MiB)')
    return out


if __name__ == '__main__':
    from mmseg.apis.cli import run_cli
    run_cli(main)  # a missing or bad input: one line `error: ...`, exit status 2
