"""A run folder is self-contained (moved/copied runs resume their own checkpoints); one run per
work dir (a lock that a killed holder does not leave stuck)."""
import shutil
import signal
import subprocess
import sys

import pytest
import torch

from mmseg.engine.workdir import (LOCK_FILE, ForeignCheckpointError, WorkDirBusyError,
                                  lock_work_dir, resolve_last_checkpoint)


def _weights(runner):
    return {k: v.clone() for k, v in runner.bare_model.state_dict().items()}


def test_moved_and_copied_runs_resume_from_their_own_checkpoints(tmp_path, make_toy_runner):
    full = make_toy_runner(tmp_path / 'full', max_iters=4)
    full.train()
    expected = _weights(full)
    make_toy_runner(tmp_path / 'A', max_iters=2).train()
    assert (tmp_path / 'A' / 'last_checkpoint').read_text() == 'iter_2.pth'
    shutil.copytree(tmp_path / 'A', tmp_path / 'copy')
    shutil.move(str(tmp_path / 'A'), str(tmp_path / 'moved'))
    (tmp_path / 'A').mkdir()  # the old place exists again, with a different iter_2.pth
    torch.save({'state_dict': {}}, tmp_path / 'A' / 'iter_2.pth')
    for name in ('copy', 'moved'):
        assert resolve_last_checkpoint(str(tmp_path / name)) == str(tmp_path / name /
                                                                    'iter_2.pth')
        runner = make_toy_runner(tmp_path / name, max_iters=4, resume=True)
        runner.train()
        resumed = _weights(runner)
        assert all(torch.equal(resumed[k], expected[k]) for k in expected), name
        assert (tmp_path / name / 'last_checkpoint').read_text() == 'iter_4.pth'


def test_old_absolute_last_checkpoint_is_read_as_the_own_file_or_refused(tmp_path):
    own, other = tmp_path / 'own', tmp_path / 'other'
    own.mkdir()
    other.mkdir()
    (other / 'iter_2.pth').write_bytes(b'x')
    (own / 'last_checkpoint').write_text(str(other / 'iter_2.pth'))
    with pytest.raises(ForeignCheckpointError, match=r'not in this work dir.*--resume .*other'):
        resolve_last_checkpoint(str(own))
    (own / 'iter_2.pth').write_bytes(b'x')
    assert resolve_last_checkpoint(str(own)) == str(own / 'iter_2.pth')
    (own / 'last_checkpoint').write_text('iter_9.pth')
    with pytest.raises(FileNotFoundError, match='iter_9.pth'):
        resolve_last_checkpoint(str(own))
    assert resolve_last_checkpoint(str(tmp_path)) is None


# Another process holding the lock the way lock_work_dir does (flock, pid in the file).
HOLDER = ("import fcntl, os, sys, time; f = open(sys.argv[1], 'a+'); "
          "fcntl.flock(f, fcntl.LOCK_EX); f.truncate(0); f.write(str(os.getpid())); f.flush(); "
          "print('ready', flush=True); time.sleep(120)")


def test_second_run_on_a_held_work_dir_stops_naming_the_holder(tmp_path):
    holder = subprocess.Popen([sys.executable, '-c', HOLDER, str(tmp_path / LOCK_FILE)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'ready'
        with pytest.raises(WorkDirBusyError, match=rf'in use by another training \(pid '
                           rf'{holder.pid}, lock .*train\.lock\)'):
            lock_work_dir(str(tmp_path))
    finally:
        holder.send_signal(signal.SIGKILL)  # a killed holder leaves no stale lock
        holder.wait(30)
    lock = lock_work_dir(str(tmp_path))
    with pytest.raises(WorkDirBusyError):  # also within one process: one lock per work dir
        lock_work_dir(str(tmp_path))
    lock.release()
    lock_work_dir(str(tmp_path)).release()
