"""Evaluate a trained checkpoint on the config's test set(s).

Examples::

    python tools/test.py CONFIG work_dirs/<run>/iter_40000.pth --eval mIoU
    python tools/test.py CONFIG CKPT --eval cityscapes --show-dir preds/ --out labels/

A checkpoint of a UDA wrapper (DACS) is evaluated through the segmentor it
trained; the weights must fit that segmentor completely, or the tool stops
listing the missing and unexpected keys.
"""
import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Dict, List, Optional

if __package__ in (None, ''):  # `python tools/test.py`: make the repo importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402

from mmseg.apis import (build_runner, check_data, default_work_dir, load_config,  # noqa: E402
                        load_weights, segmentor_config, unique_experiment_name)
from mmseg.utils import atomic_write_text  # noqa: E402

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
    parser.add_argument('--show-dir', help='write coloured predictions and overlays here')
    parser.add_argument('--opacity', type=float, default=0.5,
                        help='mask opacity of the overlays, in [0, 1] (default 0.5)')
    parser.add_argument('--out', help='write the predicted train ids as PNGs here '
                        '(one folder per domain), for offline evaluation')
    parser.add_argument('--work-dir', help='folder for logs and test_metrics.json')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                        help='override config keys, e.g. model.test_cfg.mode=slide')
    return parser.parse_args(argv)


def configure(cfg, args: argparse.Namespace):
    """Apply the command line to the config: plain segmentor, metric, output hooks."""
    cfg.model = segmentor_config(cfg)
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or default_work_dir(args.config)
    cfg.load_from, cfg.resume = None, False  # weights are loaded below, with a strict check
    cfg.experiment_name = unique_experiment_name(args.config)
    if args.eval:
        cfg.test_evaluator = dict(EVALUATORS[args.eval])
        extra = (cfg.get('test_cfg') or {}).get('extra_evaluators')
        if extra:
            cfg.test_cfg.extra_evaluators = {k: dict(EVALUATORS[args.eval]) for k in extra}
    if args.show_dir or args.out:
        hook = dict(type='SegPredictionWriterHook', out_dir=args.show_dir, opacity=args.opacity,
                    stages=['test'], raw_dir=args.out, show=bool(args.show_dir))
        cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [hook]
    return cfg


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    """Evaluate; return the metrics and write them to ``<work_dir>/test_metrics.json``."""
    args = parse_args(argv)
    if not Path(args.checkpoint).is_file():
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    cfg = configure(load_config(args.config, args.cfg_options), args)
    check_data(cfg, stages=('test', ))
    runner = build_runner(cfg)
    load_weights(getattr(runner.model, 'module', runner.model), args.checkpoint)
    metrics = {k: float(v) for k, v in runner.test().items()}
    # NaN (a class absent from labels and predictions) becomes null: strict JSON
    plain = {k: None if math.isnan(v) else v for k, v in metrics.items()}
    atomic_write_text(Path(cfg.work_dir) / 'test_metrics.json',
                      json.dumps(dict(checkpoint=str(args.checkpoint), metrics=plain), indent=2))
    return metrics


if __name__ == '__main__':
    main()
