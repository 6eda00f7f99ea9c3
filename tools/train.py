"""Train a segmentor from a config.

Examples::

    python tools/train.py configs/diff/<config>.py
    python tools/train.py CONFIG --work-dir work_dirs/run1 --cfg-options train_cfg.max_iters=2
    python tools/train.py CONFIG --resume                 # latest checkpoint of the work dir
    torchrun --nproc_per_node 2 tools/train.py CONFIG --launcher pytorch   # also on CPU (gloo)

Exit status: 0 done; 2 a user error (one line ``error: ...``); 75 stopped by SIGTERM or
SIGUSR1 after saving the iteration reached (continue with ``--resume``); 130 Ctrl-C (one line
naming the last good checkpoint). See docs/reliability.md.
"""
import argparse
import sys
from typing import Dict, List, Optional

from mmseg.apis import load_config, prepare_train_config, train
from mmseg.apis.cli import DictAction, run_cli
from mmseg.engine.preemption import EXIT_INTERRUPTED, EXIT_PREEMPTED, TrainingPreempted
from mmseg.engine.resume import ResumeConfigError
from mmseg.engine.workdir import ForeignCheckpointError, WorkDirBusyError, \
    resolve_last_checkpoint

# the user errors of training, besides those every tool reports in one line
TRAIN_ERRORS = (WorkDirBusyError, ForeignCheckpointError, ResumeConfigError)


class Interrupted(Exception):
    """Ctrl-C during training; the message names the last good checkpoint."""


def interrupted_message(work_dir: str) -> str:
    """The line printed after Ctrl-C: where training can be continued from."""
    try:
        last = resolve_last_checkpoint(work_dir)
    except (OSError, RuntimeError):
        last = None
    where = (f'the last good checkpoint is {last}; continue with --resume' if last else
             f'no checkpoint was written in {work_dir}')
    return f'interrupted (Ctrl-C): {where}'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a segmentor (mmengine Runner).')
    parser.add_argument('config', help='config file (configs/diff/*.py or a generated one)')
    parser.add_argument('--work-dir', help='output folder for logs and checkpoints '
                        '(default: the config\'s work_dir, else work_dirs/<config name>)')
    parser.add_argument('--resume', nargs='?', const='auto', default=None, metavar='CHECKPOINT',
                        help='resume from CHECKPOINT, or without a value from the latest '
                        'checkpoint in the work dir')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                        help='override config keys, e.g. train_cfg.max_iters=2 '
                        'model.test_cfg.mode=slide')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                        help='job launcher for distributed training (pytorch = torchrun)')
    parser.add_argument('--seed', type=int, default=None, help='random seed (default: config)')
    parser.add_argument('--deterministic', action='store_true',
                        help='deterministic algorithms (bit-exact CPU runs; slower on GPU)')
    parser.add_argument('--amp', action='store_true', help='mixed precision (GPU only)')
    parser.add_argument('--compile', action='store_true',
                        help='run the frozen UNet through torch.compile (sets the DIFF config '
                        'key compile: model.backbone.overrides.compile=True)')
    parser.add_argument('--verbose', action='store_true',
                        help='also print the environment, resolved config and hook order '
                        '(always written to the log file)')
    # torchrun < 2.0 passes --local-rank; accepted and ignored (LOCAL_RANK is read instead)
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0,
                        help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    """Train; return the last validation metrics (e.g. ``{'cityscapes/mIoU': 41.2}``)."""
    args = parse_args(argv)
    options = dict(args.cfg_options or {})
    if args.compile:
        options['model.backbone.overrides.compile'] = True
    cfg = load_config(args.config, options)
    if args.verbose:
        cfg.verbose = True
    prepare_train_config(cfg, work_dir=args.work_dir, seed=args.seed,
                         deterministic=args.deterministic, amp=args.amp, resume=args.resume,
                         launcher=args.launcher)
    try:
        return train(cfg)
    except KeyboardInterrupt:
        raise Interrupted(interrupted_message(cfg.work_dir)) from None


def cli(argv: Optional[List[str]] = None) -> Dict[str, float]:
    """:func:`main` with one-line errors and the exit statuses of the module docstring."""
    try:
        # a missing or bad input: one line `error: ...`, exit status 2
        return run_cli(main, argv, extra_errors=TRAIN_ERRORS)
    except TrainingPreempted as stop:
        print(f'preempted: {stop}', file=sys.stderr)
        sys.exit(EXIT_PREEMPTED)
    except (Interrupted, KeyboardInterrupt) as stop:
        print(str(stop) or 'interrupted (Ctrl-C)', file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)


if __name__ == '__main__':
    cli()
