"""A work dir is self-contained and used by one training at a time.

- ``last_checkpoint`` holds the checkpoint's path *relative to the work dir* (``iter_6.pth``),
  so a moved or copied run folder resumes from its own checkpoints
  (:func:`write_last_checkpoint`, :func:`resolve_last_checkpoint`). A file written by an older
  version (an absolute path) is read as the file of the same name in this work dir; a
  checkpoint of another folder is never picked up silently.
- :func:`lock_work_dir` takes an exclusive ``flock`` on ``<work_dir>/train.lock`` for the
  lifetime of the process. The operating system releases it when the process ends in any
  way (also ``kill -9``), so a killed run never leaves a stale lock behind.
"""
import errno
import fcntl
import os
import os.path as osp
from typing import Optional

from mmseg.utils import atomic_write_text

LAST_CHECKPOINT = 'last_checkpoint'
LOCK_FILE = 'train.lock'


class WorkDirBusyError(RuntimeError):
    """Another live training holds the work dir."""


class ForeignCheckpointError(RuntimeError):
    """``last_checkpoint`` names a checkpoint outside the work dir that it does not hold."""


def write_last_checkpoint(work_dir: str, checkpoint: str) -> None:
    """Record ``checkpoint`` as the latest one of ``work_dir`` (relative path, atomically)."""
    relative = osp.relpath(osp.abspath(checkpoint), osp.abspath(work_dir))
    atomic_write_text(osp.join(work_dir, LAST_CHECKPOINT), relative)


def resolve_last_checkpoint(work_dir: str) -> Optional[str]:
    """The latest checkpoint of ``work_dir`` (an absolute path), or None if none was recorded.

    Raises:
        FileNotFoundError: the recorded checkpoint is not in the work dir.
        ForeignCheckpointError: an old-style absolute path to another folder whose file of
            the same name is not in this work dir.
    """
    record = osp.join(work_dir, LAST_CHECKPOINT)
    if not osp.isfile(record):
        return None
    with open(record, encoding='utf-8') as stream:
        recorded = stream.read().strip()
    if not recorded:
        return None
    work_dir = osp.abspath(work_dir)
    if not osp.isabs(recorded):
        path = osp.normpath(osp.join(work_dir, recorded))
        if not osp.isfile(path):
            raise FileNotFoundError(f'checkpoint not found: {path} (named by {record}); '
                                    'pass --resume <checkpoint> to choose one')
        return path
    inside = osp.commonpath([osp.realpath(recorded), osp.realpath(work_dir)]) == \
        osp.realpath(work_dir)
    own = osp.join(work_dir, osp.basename(recorded))
    if inside and osp.isfile(recorded):
        return recorded
    if osp.isfile(own):
        return own
    raise ForeignCheckpointError(
        f'{record} names {recorded}, which is not in this work dir (a run folder that was '
        f'copied or moved?); pass --resume {recorded} to resume from it explicitly')


class WorkDirLock:
    """An exclusive lock on a work dir, held until :meth:`release` or the process's end."""

    def __init__(self, work_dir: str) -> None:
        self.path = osp.join(work_dir, LOCK_FILE)
        self._fd: Optional[int] = None

    def acquire(self) -> 'WorkDirLock':
        """Take the lock, or raise :class:`WorkDirBusyError` naming the holder's pid."""
        os.makedirs(osp.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = os.pread(fd, 64, 0).decode('ascii', 'replace').strip() or 'unknown'
            os.close(fd)
            if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            raise WorkDirBusyError(
                f'work dir {osp.dirname(self.path)} is in use by another training (pid '
                f'{holder}, lock {self.path}); wait for it to end or choose another '
                '--work-dir') from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f'{os.getpid()}\n'.encode('ascii'), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Give the lock back (closing the file releases the flock)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> 'WorkDirLock':
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def lock_work_dir(work_dir: str) -> WorkDirLock:
    """Lock ``work_dir`` for this process (see :class:`WorkDirLock`)."""
    return WorkDirLock(work_dir).acquire()
