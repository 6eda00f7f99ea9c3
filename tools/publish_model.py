"""Turn a training checkpoint into a smaller file to share.

Example::

    python tools/publish_model.py work_dirs/<run>/iter_40000.pth diff_gta2cs.pth
    # -> diff_gta2cs-<first 8 hex digits of sha256>.pth

Kept: the model weights (``state_dict``; the frozen Stable Diffusion weights were never in
it) and ``meta`` (config text, iteration, seed, ...). Dropped: optimiser, parameter
schedulers, message hub, random states, and the state of a UDA wrapper that inference
does not use (the EMA teacher's weights, DACS's iteration counter). The result loads
with ``torch.load(weights_only=True)`` and with ``tools/test.py`` / ``tools/infer.py``.

Reproducible: the same checkpoint (or the same weights and meta from a rerun) gives the same
bytes, hence the same name. The file is serialised in memory (``torch.save`` into a file names
its archive after the file, and the temporary file's name is random), and the meta entries
that change from run to run without changing the model (the save time and the run's name) are
left out. Nothing half-written is left: the file appears under its final name only when
complete, and a SIGTERM or an error removes the temporary file.
"""
import argparse
import hashlib
import io
import signal
import sys
from pathlib import Path
from typing import List, Optional

import torch

from mmseg.engine.checkpoint import check_finite_weights, extract_state_dict, load_checkpoint_safe
from mmseg.utils import atomic_write_bytes

KEEP = ('meta', )
# Meta entries that differ between two saves of the same weights (wall-clock time, run name).
VOLATILE_META = ('time', 'experiment_name')
# Top-level state of training-only sub-modules (anchored prefixes).
TRAINING_ONLY_PREFIXES = ('teacher.', 'ema_model.', 'imnet_model.')
TRAINING_ONLY_KEYS = ('local_iter', )


def slim_checkpoint(ckpt: dict) -> dict:
    """The published content of a training checkpoint: weights and the stable meta."""
    weights = {k: v for k, v in extract_state_dict(ckpt).items()
               if not k.startswith(TRAINING_ONLY_PREFIXES) and k not in TRAINING_ONLY_KEYS}
    slim = {key: ckpt[key] for key in KEEP if key in ckpt}
    if isinstance(slim.get('meta'), dict):
        slim['meta'] = {k: v for k, v in slim['meta'].items() if k not in VOLATILE_META}
    slim['state_dict'] = weights
    return slim


def serialise(checkpoint: dict) -> bytes:
    """``torch.save`` into memory: the same content always gives the same bytes."""
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    return buffer.getvalue()


def publish(src: Path, dst: Path) -> Path:
    """Write the slim checkpoint as ``<dst stem>-<sha256[:8]>.pth``; return its path."""
    ckpt = load_checkpoint_safe(src)
    check_finite_weights(extract_state_dict(ckpt), str(src))  # a diverged run is not published
    data = serialise(slim_checkpoint(ckpt))
    suffix = dst.suffix or '.pth'
    final = dst.with_name(f'{dst.stem}-{hashlib.sha256(data).hexdigest()[:8]}{suffix}')
    atomic_write_bytes(final, data)  # a temporary file beside it, renamed when complete
    return final


class Terminated(SystemExit):
    """SIGTERM arrived: unwinds like an error, so the temporary file is removed."""


def _on_sigterm(signum, frame) -> None:
    print('error: publish_model stopped by SIGTERM; nothing was written', file=sys.stderr)
    raise Terminated(128 + signum)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Slim a checkpoint for publishing.')
    parser.add_argument('in_file', type=Path, help='training checkpoint (.pth)')
    parser.add_argument('out_file', type=Path, help='output name; the sha256 prefix is added')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> Path:
    args = parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        out = publish(args.in_file, args.out_file)
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f'published {out} ({out.stat().st_size / 2**20:.1f} MiB)')
    return out


if __name__ == '__main__':
    from mmseg.apis.cli import run_cli
    run_cli(main)  # a missing or bad input: one line `error: ...`, exit status 2
