"""Checkpoint selection: 'last' (default) or 'best:<domain>/<metric>' via checkpoint_selection."""
import logging

import pytest
from mmengine.config import Config
from mmengine.evaluator import BaseMetric

from mmseg.engine import parse_selection
from mmseg.engine.runner import FileOnlyFilter, with_checkpoint_selection
from mmseg.registry import METRICS

from .conftest import ToyDataset, toy_cfg

# mIoU reported by the n-th validation: the best one is the second (iteration 2)
SCORES = [10.0, 30.0, 20.0]


@METRICS.register_module(force=True)
class ScriptedMIoU(BaseMetric):
    """Reports the next value of SCORES as 'mIoU' (higher is better)."""

    default_prefix = ''
    calls = 0

    def process(self, data_batch, data_samples) -> None:
        self.results.append(0)

    def compute_metrics(self, results) -> dict:
        score = SCORES[ScriptedMIoU.calls % len(SCORES)]
        ScriptedMIoU.calls += 1
        return dict(mIoU=score)


def _runner(tmp_path, selection):
    from mmseg.engine import SafeRunner
    ScriptedMIoU.calls = 0
    loader = dict(dataset=ToyDataset(n=2), sampler=dict(type='DefaultSampler', shuffle=False),
                  batch_size=2, num_workers=0)
    cfg = toy_cfg(tmp_path, max_iters=3, val_dataloader=loader,
                  val_evaluator=dict(type='ScriptedMIoU'),
                  val_cfg=dict(type='MultiValLoop', domain='toy'))
    cfg['train_cfg'] = dict(cfg['train_cfg'], val_interval=1)
    cfg['default_hooks']['checkpoint']['interval'] = 3
    cfg['cfg'] = Config(dict(checkpoint_selection=selection))
    return SafeRunner(**cfg)


def test_best_selection_keeps_the_best_checkpoint_by_the_named_metric(tmp_path):
    _runner(tmp_path, 'best:toy/mIoU').train()
    names = sorted(p.name for p in tmp_path.glob('*.pth'))
    assert names == ['best_toy_mIoU_iter_2.pth', 'iter_3.pth']


def test_best_selection_on_a_domain_not_validated_fails_before_training(tmp_path):
    runner = _runner(tmp_path, 'best:acdc/mIoU')
    with pytest.raises(ValueError, match="no domain 'acdc' \\(it validates \\['toy'\\]\\)"):
        runner.train()
    assert not list(tmp_path.glob('*.pth'))


def test_last_selection_keeps_only_interval_checkpoints(tmp_path):
    _runner(tmp_path, 'last').train()
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['iter_3.pth']


def test_selection_parsing_and_errors():
    assert parse_selection('last') == (None, None)
    assert parse_selection('best:acdc/mIoU') == ('acdc/mIoU', 'greater')
    for bad in ('best', 'best:', 'first', None):
        with pytest.raises(ValueError, match="'last' or 'best:<metric>'"):
            parse_selection(bad)
    hooks = dict(checkpoint=dict(type='CheckpointHook', save_best='cityscapes/mIoU'))
    with pytest.raises(ValueError, match='conflicts with default_hooks.checkpoint'):
        with_checkpoint_selection(hooks, 'best:acdc/mIoU')
    assert with_checkpoint_selection(hooks, 'best:cityscapes/mIoU') == hooks


def test_console_filter_keeps_reports_in_the_file_only():
    def record(message):
        return logging.LogRecord('x', logging.INFO, __file__, 1, message, None, None)
    console = FileOnlyFilter()
    assert not console.filter(record('Config:\nmodel = ...'))
    assert not console.filter(record('Hooks will be executed in the following order:\n...'))
    assert not console.filter(record('Iter(val) [8/8]    cityscapes/aAcc: 11.8  ...'))
    assert console.filter(record('Iter(train) [10/40] loss: 1.0'))


@pytest.mark.parametrize('verbose', [False, True])
def test_runner_start_reports_go_to_the_log_file(tmp_path, capsys, verbose):
    from mmseg.engine import SafeRunner
    cfg = toy_cfg(tmp_path)
    cfg['cfg'] = Config(dict(verbose=verbose, default_scope='mmseg'))
    runner = SafeRunner(**cfg)
    console = capsys.readouterr().out
    log_file = next(tmp_path.glob('*/*.log')).read_text()
    assert 'Hooks will be executed' in log_file and 'System environment' in log_file
    assert ('Hooks will be executed' in console) is verbose
    assert ('System environment' in console) is verbose
    assert 'WARNING' not in console, console
    del runner
