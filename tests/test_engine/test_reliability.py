"""Issue 9: non-finite guard, kill-safe checkpoints, checked hook arguments, clear load errors."""
import multiprocessing
import os
import re
import signal

import pytest
import torch

from mmseg.engine.checkpoint import (NonFiniteWeightsError, NotACheckpointError,
                                     check_finite_weights, load_checkpoint_safe,
                                     save_checkpoint_atomic)
from mmseg.engine.guards import NonFiniteLossError
from mmseg.engine.validation import UnknownConfigKeyError
from mmseg.engine.workdir import resolve_last_checkpoint
from mmseg.utils import DiskFullError, atomic_write_text

from .conftest import toy_cfg


def _make(work_dir, **kwargs):
    from mmseg.engine import SafeRunner
    return SafeRunner(**toy_cfg(work_dir, **kwargs))


def test_nan_loss_stops_at_that_iteration_without_saving_it(tmp_path):
    work_dir = tmp_path / 'nan'
    cfg = toy_cfg(work_dir, max_iters=6)
    cfg['optim_wrapper']['optimizer']['lr'] = 1e30  # diverges within a few iterations
    cfg['default_hooks']['checkpoint']['interval'] = 1
    from mmseg.engine import SafeRunner
    runner = SafeRunner(**cfg)
    with pytest.raises(NonFiniteLossError) as info:
        runner.train()
    message = str(info.value)
    stopped = int(re.search(r'iteration (\d+)', message).group(1))
    assert 'loss=' in message and 'not saved' in message
    assert stopped == runner.iter + 1
    saved = sorted(int(p.stem.split('_')[1]) for p in work_dir.glob('iter_*.pth'))
    assert saved == list(range(1, stopped))  # nothing of the diverged iteration
    last = resolve_last_checkpoint(str(work_dir)) or ''
    if saved:
        assert last.endswith(f'iter_{saved[-1]}.pth') and last in message
        weights = load_checkpoint_safe(last)['state_dict']
        check_finite_weights(weights, last)  # the last good checkpoint is finite


def test_non_finite_weights_are_named(tmp_path):
    weights = {'a.weight': torch.ones(3), 'b.bias': torch.tensor([1.0, float('nan')]),
               'c': torch.tensor([float('inf')]), 'step': torch.tensor(3)}
    with pytest.raises(NonFiniteWeightsError, match=r'2 of 4 tensors: b\.bias \(1/2 values\), '
                       r'c \(1/1 values\)'):
        check_finite_weights(weights, 'x.pth')


def test_hook_argument_typo_fails_when_the_runner_is_built(tmp_path):
    cfg = toy_cfg(tmp_path / 'typo')
    cfg['default_hooks']['checkpoint']['intervall'] = 1
    from mmseg.engine import SafeRunner
    with pytest.raises(UnknownConfigKeyError,
                       match=r"default_hooks\.checkpoint\.intervall: .*did you mean 'interval'"):
        SafeRunner(**cfg)
    cfg = toy_cfg(tmp_path / 'typo2', custom_hooks=[dict(type='SegPredictionWriterHook',
                                                         max_per_domian=3)])
    with pytest.raises(UnknownConfigKeyError, match="did you mean 'max_per_domain'"):
        SafeRunner(**cfg)


@pytest.mark.parametrize('content,why', [(b'', 'empty'), (b'\0' * 64, 'not a torch.save'),
                                         (b'PK\x03\x04' + b'\0' * 60, 'not a torch.save')])
def test_empty_or_corrupt_checkpoint_is_not_a_checkpoint(tmp_path, content, why):
    path = tmp_path / 'bad.pth'
    path.write_bytes(content)
    with pytest.raises(NotACheckpointError) as info:
        load_checkpoint_safe(path)
    assert 'is not a checkpoint' in str(info.value) and why in str(info.value)
    assert 'weights_only=False' not in str(info.value)


def test_truncated_and_pickled_checkpoints(tmp_path):
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.zeros(1000)}}, good)
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(good.read_bytes()[:len(good.read_bytes()) // 2])
    with pytest.raises(NotACheckpointError, match='is not a checkpoint'):
        load_checkpoint_safe(cut)
    evil = tmp_path / 'evil.pth'
    torch.save({'meta': {'cls': os.system}}, evil)
    with pytest.raises(NotACheckpointError) as info:
        load_checkpoint_safe(evil)
    text = str(info.value)
    assert 'pickled Python objects' in text and 'cannot load it safely' in text
    assert 'weights_only=False' not in text


def test_full_disk_is_reported_with_the_file_and_free_space(tmp_path, monkeypatch):
    def full(obj, path):
        open(path, 'wb').write(b'x')
        raise RuntimeError('[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0')

    monkeypatch.setattr(torch, 'save', full)
    target = tmp_path / 'iter_9.pth'
    with pytest.raises(DiskFullError, match=r'cannot write .*iter_9\.pth: the disk is full '
                       r'\(.* MiB free in'):
        save_checkpoint_atomic({'a': 1}, target)
    assert list(tmp_path.iterdir()) == []  # no temporary file left


def test_files_get_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / 'a.txt', 'x')
        os.umask(0o077)
        atomic_write_text(tmp_path / 'b.txt', 'x')
    finally:
        os.umask(old)
    assert (tmp_path / 'a.txt').stat().st_mode & 0o777 == 0o644
    assert (tmp_path / 'b.txt').stat().st_mode & 0o777 == 0o600


# --- kill-safe checkpoints --------------------------------------------------------------

# (fault point, saves to let through first) of the consecutive runs of one work dir.
KILLS = [('checkpoint_before_write', 1), ('checkpoint_written', 0),
         ('checkpoint_before_last', 1), ('checkpoint_before_remove', 0)]
MAX_ITERS = 10


def _kill_self():
    os.kill(os.getpid(), signal.SIGKILL)


def _inject_fault(point, skip):
    """SIGKILL this (child) process at ``point`` of the ``skip + 1``-th checkpoint save."""
    import mmseg.engine.workdir as workdir
    passes = {'n': skip}

    def due():
        passes['n'] -= 1
        return passes['n'] < 0

    real_save, real_write = torch.save, workdir.atomic_write_text

    def save(obj, path, *args, **kwargs):  # inside the atomic write of the checkpoint
        if point == 'checkpoint_before_write' and due():
            _kill_self()
        real_save(obj, path, *args, **kwargs)
        if point == 'checkpoint_written' and due():
            _kill_self()  # written, not yet renamed into place

    def write_last(path, text):  # last_checkpoint, after the checkpoint is in place
        if point == 'checkpoint_before_last' and due():
            _kill_self()
        real_write(path, text)
        if point == 'checkpoint_before_remove' and due():
            _kill_self()  # before outdated checkpoints are removed

    torch.save = save
    workdir.atomic_write_text = write_last


def _child(work_dir, point, skip, max_keep):
    torch.set_num_threads(1)
    if point:
        _inject_fault(point, skip)
    runner = _make(work_dir, max_iters=MAX_ITERS, resume=True,
                   default_hooks=dict(checkpoint=dict(type='CheckpointHook', by_epoch=False,
                                                      interval=1, max_keep_ckpts=max_keep)))
    runner.train()
    os._exit(0)


def _run_child(work_dir, point='', skip=0, max_keep=-1) -> int:
    process = multiprocessing.get_context('fork').Process(
        target=_child, args=(str(work_dir), point, skip, max_keep))
    process.start()
    process.join(120)
    return process.exitcode


@pytest.mark.parametrize('max_keep', [-1, 1])
def test_kill_at_any_point_of_a_save_loses_nothing(tmp_path, max_keep):
    reference = _make(tmp_path / 'ref', max_iters=MAX_ITERS)
    reference.train()
    expected = {k: v.clone() for k, v in reference.bare_model.state_dict().items()}
    work_dir = tmp_path / 'run'
    for point, skip in KILLS:
        assert _run_child(work_dir, point, skip, max_keep) == -signal.SIGKILL, point
        last = resolve_last_checkpoint(str(work_dir))
        assert os.path.isfile(last), f'{point}: last_checkpoint names a missing file'
        load_checkpoint_safe(last)
        for path in work_dir.glob('iter_*.pth'):
            load_checkpoint_safe(path)  # every checkpoint on disk is complete
    assert _run_child(work_dir, max_keep=max_keep) == 0
    assert not [p.name for p in work_dir.iterdir() if '.tmp' in p.name]
    kept = sorted(p.name for p in work_dir.glob('iter_*.pth'))
    if max_keep == 1:
        assert kept == [f'iter_{MAX_ITERS}.pth']
    final = load_checkpoint_safe(work_dir / f'iter_{MAX_ITERS}.pth')['state_dict']
    for key, value in expected.items():
        assert torch.equal(final[key], value), key  # resume stays bit exact
