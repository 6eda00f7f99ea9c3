"""Write a tiny, seeded MiT (SegFormer encoder) folder in the transformers format.

The folder has what ``nvidia/mit-b5`` ships (``config.json`` and ``model.safetensors`` of a
``SegformerForImageClassification``, the ImageNet classifier whose encoder the baseline loads)
with B5's block layout (4 stages, heads 1/2/5/8, reduction ratios 8/4/2/1, strides 4/8/16/32)
at widths 8-64 and one block per stage, so tests load it through the real loading path in well
under a second. Nothing is downloaded.

Usage::

    python tools/make_tiny_mit.py checkpoints/tiny-mit [--seed 0]
"""
import argparse
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import torch

logger = logging.getLogger(__name__)

# B5: hidden_sizes (64, 128, 320, 512), depths (3, 6, 40, 3); here the same heads and ratios.
TINY_MIT = dict(num_channels=3, num_encoder_blocks=4, depths=[1, 1, 1, 1],
                sr_ratios=[8, 4, 2, 1], hidden_sizes=[8, 16, 40, 64], patch_sizes=[7, 3, 3, 3],
                strides=[4, 2, 2, 2], num_attention_heads=[1, 2, 5, 8], mlp_ratios=[4, 4, 4, 4],
                num_labels=10)


def is_complete(folder: Path) -> bool:
    """Whether ``folder`` holds a model written by :func:`make_tiny_mit`."""
    return (Path(folder) / 'config.json').is_file() and any(Path(folder).glob('*.safetensors'))


def make_tiny_mit(out_dir: Path, seed: int = 0,
                  hidden_sizes: Optional[Sequence[int]] = None) -> Path:
    """Write the tiny MiT classifier folder to ``out_dir`` (idempotent, atomic).

    Args:
        out_dir: Target folder. If it already holds a complete model it is returned untouched.
        seed: Seed of the random weights.
        hidden_sizes: Stage widths instead of the tiny ones (e.g. B5's 64, 128, 320, 512, to
            build a config at its real head widths); each must divide by its head count.

    Raises:
        FileExistsError: ``out_dir`` exists, is not empty and is not a complete model.
    """
    from transformers import SegformerConfig, SegformerForImageClassification
    out_dir = Path(out_dir)
    if is_complete(out_dir):
        return out_dir
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f'{out_dir} exists but is not a complete tiny MiT folder; '
                              'remove it and run again.')
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f'.{out_dir.name}.', dir=out_dir.parent))
    try:
        os.chmod(scratch, 0o755)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            settings = dict(TINY_MIT, **({'hidden_sizes': list(hidden_sizes)}
                                         if hidden_sizes is not None else {}))
            SegformerForImageClassification(SegformerConfig(**settings)).save_pretrained(scratch)
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(scratch, out_dir)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        if is_complete(out_dir):  # another process won the race
            return out_dir
        raise
    logger.info('Wrote tiny MiT to %s', out_dir)
    return out_dir


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('out_dir', type=Path, help='folder to write (transformers format)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the random weights')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    print(make_tiny_mit(args.out_dir, seed=args.seed))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
