"""Evaluate a trained checkpoint on the config's test set(s).

Examples::

    python tools/test.py CONFIG work_dirs/<run>/iter_40000.pth --eval mIoU
    python tools/test.py CONFIG CKPT --eval cityscapes --show-dir preds/ --out labels/
    python tools/test.py CONFIG CKPT --domains acdc dark_zurich     # any subset of domains
    python tools/test.py CONFIG CKPT --batch-size 4 --compile      # batched, compiled UNet
    torchrun --nproc_per_node 2 tools/test.py CONFIG CKPT --launcher pytorch  # also on CPU
    python tools/test.py CONFIG CKPT --format-only --out submit/ --domains acdc
        # unlabelled test split -> submit/acdc.zip in the test server's layout, no metric

A checkpoint of a UDA wrapper (DACS) is evaluated through the segmentor it
trained; the weights must fit that segmentor completely, or the tool stops
listing the missing and unexpected keys.
"""
import argparse
import json
import math
from pathlib import Path
from typing import Dict, List, Optional


import torch.distributed as dist
from mmengine.dist import is_main_process

from mmseg.apis import (build_runner, check_data, default_work_dir, load_config,
                        load_weights, segmentor_config, unique_experiment_name)
from mmseg.apis.cli import DictAction, run_cli
from mmseg.apis.eval_batch import apply_eval_batch_size
from mmseg.engine import (cpu_ddp_needed, cpu_model_wrapper_cfg,
                          init_cpu_process_group)
from mmseg.engine.checkpoint import (check_finite_weights, extract_state_dict,
                                     load_checkpoint_safe)
from mmseg.utils import atomic_write_text

EVALUATORS = {
    'mIoU': dict(type='IoUMetric', iou_metrics=['mIoU']),
    # official cityscapesscripts evaluation; needs Cityscapes *_gtFine_labelIds.png
    'cityscapes': dict(type='CityscapesMetric'),
}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Evaluate a checkpoint.')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint (.pth) written by training or '
                        'tools/publish_model.py')
    parser.add_argument('--eval', choices=sorted(EVALUATORS), default=None,
                        help='metric (default: the config\'s test_evaluator)')
    parser.add_argument('--show-dir', help='write a figure per image here: image | ground '
                        'truth | prediction | error map, with a class legend')
    parser.add_argument('--out', help='write the predicted train ids as PNGs here '
                        '(one folder per domain), for offline evaluation')
    parser.add_argument('--work-dir', help='folder for logs and test_metrics.json')
    parser.add_argument('--domains', nargs='+', metavar='DOMAIN',
                        help="evaluate these domains (sets the config's target_domains): any of "
                        'cityscapes acdc dark_zurich bdd100k mapillary, or all')
    parser.add_argument('--format-only', action='store_true',
                        help='run the unlabelled TEST split of each domain (cityscapes, acdc, '
                        'dark_zurich) and write its test-server submission to --out '
                        '(<out>/<domain>.zip and the files); no metric')
    parser.add_argument('--batch-size', type=int, default=None, metavar='N',
                        help='images per evaluation batch, for every domain (default: the '
                        'config\'s test_dataloader.batch_size); predictions do not depend on it')
    parser.add_argument('--compile', action='store_true',
                        help='run the frozen UNet through torch.compile (DIFF config key '
                        'compile; same predictions within float tolerance)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                        help='spread the evaluation over processes (pytorch = torchrun; CPU '
                        'processes use gloo); metrics are gathered over all of them')
    # torchrun < 2.0 passes --local-rank; accepted and ignored (LOCAL_RANK is read instead)
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0,
                        help=argparse.SUPPRESS)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                        help='override config keys, e.g. model.test_cfg.mode=slide')
    parser.add_argument('--verbose', action='store_true',
                        help='also print the environment, resolved config and hook order '
                        '(always written to the log file)')
    parser.add_argument('--allow-other-sd', action='store_true',
                        help='evaluate even if the checkpoint was trained with another Stable '
                        'Diffusion folder than model_id (a warning instead of an error)')
    args = parser.parse_args(argv)
    if args.format_only and not args.out:
        parser.error('--format-only needs --out DIR (where the submissions are written)')
    if args.batch_size is not None and args.batch_size < 1:
        parser.error(f'--batch-size must be a positive integer, got {args.batch_size}')
    return args


def config_options(args: argparse.Namespace) -> dict:
    """--cfg-options plus the keys --domains and --format-only set."""
    options = dict(args.cfg_options or {})
    if args.domains:
        options['target_domains'] = list(args.domains)
        options['targets_for_evaluation_only'] = True  # a DACS config keeps its train target
    if args.format_only:
        options['test_split'] = 'test'
    if args.compile:
        options['model.backbone.overrides.compile'] = True
    return options


def set_batch_size(cfg, batch_size: Optional[int]) -> None:
    """Evaluation batch size of the test loader and of every extra domain's loader."""
    if batch_size is not None:
        apply_eval_batch_size(cfg, batch_size)


def submission_evaluators(cfg, out_dir: str):
    """One SubmissionWriter per test domain (main evaluator, per-domain extras)."""
    loop = cfg.get('test_cfg') or {}
    if 'domain' not in loop:
        raise ValueError('--format-only needs a config with target_domains (the test splits '
                         'are chosen by domain); see configs/_base_/datasets/dg_val_domains.py')
    writer = dict(type='SubmissionWriter', out_dir=str(out_dir))
    cfg.test_evaluator = dict(writer, benchmark=loop['domain'])
    cfg.test_cfg.extra_evaluators = {d: dict(writer, benchmark=d)
                                     for d in loop.get('extra_domains') or {}}


def configure(cfg, args: argparse.Namespace):
    """Apply the command line to the config: plain segmentor, metric, output hooks."""
    cfg.model = segmentor_config(cfg)
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or default_work_dir(args.config)
    cfg.load_from, cfg.resume = None, False  # weights are loaded below, with a strict check
    cfg.experiment_name = unique_experiment_name(args.config)
    if getattr(args, 'verbose', False):
        cfg.verbose = True
    set_batch_size(cfg, getattr(args, 'batch_size', None))
    cfg.launcher = getattr(args, 'launcher', 'none')
    if cpu_ddp_needed(cfg.launcher):
        cfg.model_wrapper_cfg = cpu_model_wrapper_cfg(False)
    if args.eval:
        cfg.test_evaluator = dict(EVALUATORS[args.eval])
        extra = (cfg.get('test_cfg') or {}).get('extra_evaluators')
        if extra:
            cfg.test_cfg.extra_evaluators = {k: dict(EVALUATORS[args.eval]) for k in extra}
    if args.format_only:
        submission_evaluators(cfg, args.out)
    raw_dir = None if args.format_only else args.out
    if args.show_dir or raw_dir:
        configure_prediction_writer(cfg, args.show_dir, raw_dir)
    return cfg


def configure_prediction_writer(cfg, show_dir: Optional[str], raw_dir: Optional[str]) -> None:
    """One SegPredictionWriterHook for --show-dir/--out, in place of the config's own.

    A config may already hold the hook (e.g. the demo's, for validation images); it is
    replaced, so no image is written twice. The new one writes every test image.
    """
    hooks = [hook for hook in (cfg.get('custom_hooks') or [])
             if not (isinstance(hook, dict) and hook.get('type') == 'SegPredictionWriterHook')]
    hooks.append(dict(type='SegPredictionWriterHook', out_dir=show_dir, stages=['test'],
                      raw_dir=raw_dir, show=bool(show_dir), max_per_domain=None))
    cfg.custom_hooks = hooks


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    """Evaluate; return the metrics and write them to ``<work_dir>/test_metrics.json``."""
    args = parse_args(argv)
    # a missing, corrupt or diverged checkpoint fails before the (slow) model build
    check_finite_weights(extract_state_dict(load_checkpoint_safe(args.checkpoint)),
                         args.checkpoint)
    cfg = configure(load_config(args.config, config_options(args)), args)
    check_data(cfg, stages=('test', ))
    own_group = cpu_ddp_needed(cfg.launcher) and not dist.is_initialized()
    if cpu_ddp_needed(cfg.launcher):  # CPU-only: gloo before the Runner (docs/pitfalls.md #12)
        init_cpu_process_group(cfg.launcher)
    try:
        runner = build_runner(cfg)
        load_weights(getattr(runner.model, 'module', runner.model), args.checkpoint,
                     allow_other_sd=args.allow_other_sd)
        # every process gets the metrics of all processes' images (mmengine gathers them)
        metrics = {k: float(v) for k, v in runner.test().items()}
    finally:
        if own_group and dist.is_initialized():
            dist.destroy_process_group()
    # NaN (a class absent from labels and predictions) becomes null: strict JSON
    plain = {k: None if math.isnan(v) else v for k, v in metrics.items()}
    if is_main_process():
        atomic_write_text(Path(cfg.work_dir) / 'test_metrics.json',
                          json.dumps(dict(checkpoint=str(args.checkpoint), metrics=plain),
                                     indent=2))
    return metrics


if __name__ == '__main__':
    run_cli(main)  # a missing or bad input: one line `error: ...`, exit status 2
