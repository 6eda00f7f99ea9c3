"""Atomic file writing: nothing the project writes is ever left half-written.

Files are created with the permissions the process umask allows (``0o666 & ~umask``, like
``open()``), not the ``0600`` of :func:`tempfile.mkstemp`; a full disk is reported as such,
naming the file and the free space.
"""
import contextlib
import errno
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, List, Union

PathLike = Union[str, os.PathLike]

# Temporary names written by atomic_path: '.<stem>.<8 random chars>.tmp<suffix>'.
_TMP_NAME = re.compile(r'^\..+\.[A-Za-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)?$')


class DiskFullError(OSError):
    """A file could not be written because its file system is full."""


def current_umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def free_space_text(folder: PathLike) -> str:
    """Free space of the file system holding ``folder``, e.g. ``'12.3 MiB'``."""
    try:
        free = shutil.disk_usage(os.fspath(folder)).free
    except OSError:
        return 'unknown'
    return f'{free / 2**20:.1f} MiB'


def disk_full_error(path: PathLike, cause: BaseException) -> DiskFullError:
    """The error raised when writing ``path`` failed for lack of space."""
    folder = Path(path).parent
    return DiskFullError(errno.ENOSPC, f'cannot write {path}: the disk is full '
                         f'({free_space_text(folder)} free in {folder}); free some space '
                         f'and retry (cause: {str(cause).strip().splitlines()[0][:200]})')


def is_disk_full(error: BaseException) -> bool:
    """True for ENOSPC and for torch's zip-writer failures that a full disk causes."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and (
        'unexpected pos' in text or 'PytorchStreamWriter failed' in text
        or 'file write failed' in text)


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    The temporary file keeps the suffix of ``path`` so that writers choosing a
    format by extension (cv2, PIL, matplotlib) still work. On an exception the
    temporary file is removed and ``path`` is left as it was. The final file has
    the permissions the umask allows.

    Raises:
        DiskFullError: the write failed because the disk is full.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.stem}.', suffix=f'.tmp{path.suffix}',
                               dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if os.path.exists(tmp):
            os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        if is_disk_full(error) and not isinstance(error, DiskFullError):
            raise disk_full_error(path, error) from None
        raise


def remove_stale_temp_files(folder: PathLike) -> List[Path]:
    """Delete temporary files left in ``folder`` by an :func:`atomic_path` that was killed.

    Only names of the form ``.<stem>.<8 chars>.tmp[.<suffix>]`` directly in ``folder`` are
    removed. Returns the files removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for entry in folder.iterdir():
        if entry.is_file() and _TMP_NAME.match(entry.name):
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                removed.append(entry)
    return removed


def apply_umask_permissions(folder: PathLike) -> None:
    """Give ``folder`` and everything below it the permissions the umask allows.

    For trees written by libraries that create private files (``safetensors`` writes 0600):
    folders get ``0o777 & ~umask``, files ``0o666 & ~umask``.
    """
    mask = current_umask()
    os.chmod(folder, 0o777 & ~mask)
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o777 & ~mask)
        for name in files:
            os.chmod(os.path.join(root, name), 0o666 & ~mask)


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding='utf-8')


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
