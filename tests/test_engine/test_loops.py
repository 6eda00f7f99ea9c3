"""MultiValLoop / MultiTestLoop: one run, several domains, prefixed metrics, one table."""
import torch

from mmseg.engine import format_domain_table
from test_engine.conftest import ToyDataset


def _loader(shift):
    return dict(dataset=ToyDataset(n=6, seed=1, shift=shift),
                sampler=dict(type='DefaultSampler', shuffle=False), batch_size=2, num_workers=0)


def _val_kwargs(loop_type='MultiValLoop', stage='val'):
    return {f'{stage}_dataloader': _loader(0.0),
            f'{stage}_evaluator': dict(type='ToyErrorMetric'),
            f'{stage}_cfg': dict(type=loop_type, domain='clean',
                                 extra_domains=dict(shifted=_loader(3.0)))}


def test_multi_val_loop_prefixes_metrics_per_domain(tmp_path, make_toy_runner):
    runner = make_toy_runner(tmp_path, max_iters=2, **_val_kwargs())
    runner.train()
    metrics = runner.val_loop.last_metrics
    assert set(metrics) == {'clean/mae', 'shifted/mae'}
    # the shifted domain's targets are 3 away: its error must be clearly larger
    assert metrics['shifted/mae'] > metrics['clean/mae'] + 1.0
    scalars = runner.message_hub.log_scalars
    assert 'val/shifted/mae' in scalars and 'val/clean/mae' in scalars
    assert runner.val_loop.current_domain == 'clean'


def test_validation_leaves_global_rng_untouched(tmp_path, make_toy_runner):
    runner = make_toy_runner(tmp_path, max_iters=1, **_val_kwargs())
    runner.train()
    before = torch.get_rng_state()
    runner.val_loop.run()
    assert torch.equal(before, torch.get_rng_state())


def test_multi_test_loop(tmp_path, make_toy_runner):
    runner = make_toy_runner(tmp_path, **_val_kwargs('MultiTestLoop', 'test'))
    metrics = runner.test()
    assert set(metrics) == {'clean/mae', 'shifted/mae'}


def test_format_domain_table_rows_and_columns():
    metrics = {'cs/IoU.road': 90.0, 'cs/mIoU': 50.0, 'acdc/IoU.road': 70.5, 'acdc/mIoU': 30.25,
               'acdc/IoU.sky': float('nan')}
    table = format_domain_table(metrics, ['cs', 'acdc'], classes=('road', 'sky'))
    lines = table.splitlines()
    assert lines[0].split() == ['cs', '|', 'acdc'] or 'acdc' in lines[0]
    assert any(line.startswith('IoU road') and '90.00' in line and '70.50' in line
               for line in lines)
    assert any(line.startswith('IoU sky') and 'n/a' in line for line in lines)
    assert any(line.startswith('mIoU') and '50.00' in line and '30.25' in line for line in lines)
