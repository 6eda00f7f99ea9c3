"""Print the fully resolved config (all ``_base_`` files merged, overrides applied).

Example::

    python tools/print_config.py configs/diff/<config>.py --cfg-options train_cfg.max_iters=2
"""
import argparse
from typing import List, Optional

from mmseg.apis import load_config
from mmseg.apis.cli import DictAction
from mmseg.utils import atomic_write_text


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Print the resolved config.')
    parser.add_argument('config', help='config file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                        help='override config keys (dotted), e.g. train_cfg.max_iters=2')
    parser.add_argument('--out', help='also write the resolved config to this .py file')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> str:
    """Print (and optionally save) the resolved config; return its text."""
    args = parse_args(argv)
    text = load_config(args.config, args.cfg_options).pretty_text
    print(text)
    if args.out:
        atomic_write_text(args.out, text)
    return text


if __name__ == '__main__':
    from mmseg.apis.cli import run_cli
    run_cli(main)  # a missing or bad input: one line `error: ...`, exit status 2
