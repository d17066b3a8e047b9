"""Atomic file writes: a reader sees the old file or the new one, whole, never a part.

Used for everything xpscratch saves (checkpoints, downloads, experiment results), so
that an interrupted save never destroys what was there before.

A save that is killed (``kill -9``, a power cut) cannot remove its temporary file; the
next save to the same path removes such leftovers.  A writer holds an exclusive lock
(``flock``) on its temporary file while it writes and the operating system drops the
lock when the process dies, so a leftover is told from a save still in progress in
another process without guessing from its age.  Without ``fcntl`` (Windows), a file
still open elsewhere cannot be deleted, which keeps a live save safe the same way.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["atomic_open", "atomic_write_bytes"]


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, *, suffix: str = ".tmp") -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for writing; on success it replaces ``path``.

    The data is flushed and fsynced before ``os.replace``, and the directory after it.
    If the block raises (any exception, Ctrl-C included), the temporary file is removed
    and ``path`` is left as it was.  The directory must exist.  Through a symbolic
    link, the link's target is replaced and the link kept.  Leftover temporary files of
    killed saves to the same path are removed first.
    """
    if os.path.islink(path):  # replace the file the link points to, not the link
        path = os.path.realpath(path)
    path = Path(path)
    mode = _file_mode(path)
    _remove_leftovers(path, suffix)
    fd, tmp, lock = _locked_temp(path, suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # mkstemp's 0600 would hide the file from its other readers
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        if lock is not None:
            os.close(lock)  # held until the rename: the temporary file is never "left over"
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` (creating its directory) with :func:`atomic_open`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as f:
        f.write(data)


def _locked_temp(path: Path, suffix: str) -> tuple[int, str, int | None]:
    """A new temporary file beside ``path``, with our lock on it (a dup'd descriptor)."""
    while True:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
        if fcntl is None:
            return fd, tmp, None
        lock = os.dup(fd)
        fcntl.flock(lock, fcntl.LOCK_EX)  # waits out a cleaner that is looking at it
        if os.fstat(fd).st_nlink:
            return fd, tmp, lock
        os.close(lock)  # a cleaner took it for a leftover between mkstemp and flock
        os.close(fd)


def _remove_leftovers(path: Path, suffix: str) -> None:
    """Delete our temporary files for ``path`` that no live writer holds."""
    name = re.escape(f".{path.name}.") + r"[a-z0-9_]{8}" + re.escape(suffix)  # as mkstemp's
    ours = re.compile(name)
    try:
        names = [n for n in os.listdir(path.parent) if ours.fullmatch(n)]
    except OSError:
        return
    for name in names:
        stale = os.path.join(path.parent, name)
        if fcntl is None:
            with contextlib.suppress(OSError):
                os.unlink(stale)  # refused while another process has it open
            continue
        try:
            fd = os.open(stale, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.unlink(stale)
        except OSError:
            pass  # a save in progress holds it (or it went away already)
        finally:
            os.close(fd)


def _file_mode(path: Path) -> int:
    """The mode a file written in place would get: the old file's, or 0666 less the umask."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def _fsync_dir(directory: Path) -> None:
    # makes the rename itself durable on POSIX; directories cannot be opened on Windows
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
