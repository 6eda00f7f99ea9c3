"""Real signals on a training subprocess: SIGTERM saves the iteration reached and exits 75,
--resume reproduces the uninterrupted losses exactly; Ctrl-C is one line; resume tells the
truth about a changed config; a second training on a held work dir stops at once."""
import json
import os
import re
import signal
import subprocess
import sys

import pytest
import torch

from mmseg.engine.preemption import EXIT_INTERRUPTED, EXIT_PREEMPTED
from test_tools.workspace import DEMO, REPO, demo_options
from tools.train import cli as train_cli
from tools.train import main as train_main

ITERS = 6


def _options(tiny_sd_dir):
    # no interval checkpoint before the end: the only earlier one is the preemption's
    return ['--deterministic', '--cfg-options', *demo_options(tiny_sd_dir, iters=ITERS)]


def _losses(work_dir):
    """iteration -> loss of every logged iteration (all runs in the work dir)."""
    losses = {}
    for path in sorted(work_dir.glob('*/vis_data/scalars.json')):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if 'loss' in record:
                losses[record['step']] = record['loss']
    return losses


def _start(workspace, work_dir, tiny_sd_dir, *extra):
    env = dict(os.environ, HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1', OMP_NUM_THREADS='1')
    return subprocess.Popen([sys.executable, str(REPO / 'tools/train.py'), str(DEMO),
                             '--work-dir', str(work_dir), *_options(tiny_sd_dir), *extra],
                            cwd=workspace, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _signal_at(process, iteration, number):
    """Send ``number`` once the log shows ``iteration``; return (exit status, output)."""
    lines = []
    for line in process.stdout:
        lines.append(line)
        if re.search(rf'Iter\(train\) \[\s*{iteration}/{ITERS}\]', line):
            process.send_signal(number)
            break
    rest, _ = process.communicate(timeout=300)
    return process.returncode, ''.join(lines) + rest


@pytest.fixture(scope='module')
def uninterrupted(workspace, tiny_sd_dir):
    work_dir = workspace / 'work_dirs' / 'preempt_full'
    cwd = os.getcwd()
    os.chdir(workspace)
    try:
        train_main([str(DEMO), '--work-dir', str(work_dir), *_options(tiny_sd_dir)])
    finally:
        os.chdir(cwd)
    return work_dir


def test_sigterm_saves_the_iteration_reached_and_resume_is_bit_exact(
        workspace, tiny_sd_dir, uninterrupted, monkeypatch):
    work_dir = workspace / 'work_dirs' / 'preempted'
    status, output = _signal_at(_start(workspace, work_dir, tiny_sd_dir), 2, signal.SIGTERM)
    assert status == EXIT_PREEMPTED, output
    [line] = [x for x in output.splitlines() if x.startswith('preempted:')]
    stopped = int(re.search(r'after iteration (\d+) of 6', line).group(1))
    assert 2 <= stopped < ITERS and f'iter_{stopped}.pth' in line and 'SIGTERM' in line
    assert 'Traceback' not in output
    assert sorted(p.name for p in work_dir.glob('iter_*.pth')) == [f'iter_{stopped}.pth']

    # Ctrl-C on the resumed run: one line naming the last good checkpoint, no traceback
    status, output = _signal_at(_start(workspace, work_dir, tiny_sd_dir, '--resume'),
                                stopped + 1, signal.SIGINT)
    assert status == EXIT_INTERRUPTED, output
    assert 'Traceback' not in output and 'KeyboardInterrupt' not in output
    assert output.strip().splitlines()[-1].startswith('interrupted (Ctrl-C): the last good '
                                                      'checkpoint is ')

    monkeypatch.chdir(workspace)
    train_main([str(DEMO), '--work-dir', str(work_dir), '--resume', *_options(tiny_sd_dir)])
    expected, resumed = _losses(uninterrupted), _losses(work_dir)
    assert sorted(expected) == list(range(1, ITERS + 1))
    for step in range(stopped + 1, ITERS + 1):
        assert resumed[step] == expected[step], step  # exactly: same arithmetic
    a = torch.load(uninterrupted / f'iter_{ITERS}.pth', weights_only=True)['state_dict']
    b = torch.load(work_dir / f'iter_{ITERS}.pth', weights_only=True)['state_dict']
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_lists_differences_and_refuses_overridden_ones(
        workspace, tiny_sd_dir, uninterrupted, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(workspace)
    copy = tmp_path / 'copy'
    copy.mkdir()
    (copy / 'last_checkpoint').write_text(f'iter_{ITERS}.pth')
    (copy / f'iter_{ITERS}.pth').write_bytes((uninterrupted / f'iter_{ITERS}.pth').read_bytes())
    base = [str(DEMO), '--work-dir', str(copy), '--resume', *_options(tiny_sd_dir)]
    with pytest.raises(SystemExit) as info:
        train_cli(base + ['optim_wrapper.optimizer.lr=6e-3', 'param_scheduler.1.power=2.0'])
    assert info.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith('error: --resume ') and 'cannot change on resume' in line
    assert "optim_wrapper.optimizer.lr: 0.0006 in the checkpoint, 0.006 given" in line
    assert "param_scheduler.1.power: 1.0 in the checkpoint, 2.0 given" in line
    assert not list(copy.glob('*/'))  # stopped before the run started

    train_main(base + [f'train_cfg.max_iters={ITERS + 1}', 'default_hooks.logger.interval=2'])
    log = next(copy.glob('*/*.log')).read_text()
    assert "default_hooks.logger.interval: 1 -> 2" in log
    assert f"train_cfg.max_iters: {ITERS} -> {ITERS + 1}" in log
    assert (f'notice: training now ends at iteration {ITERS + 1} instead of {ITERS}; the '
            'learning-rate schedule is the checkpoint\'s and ends at iteration 401') in log
    saved = next(p for p in copy.glob('*.py')).read_text()
    assert f'max_iters={ITERS + 1}' in saved.replace(' ', '')  # the saved config is what ran
