"""One process at a time in a run directory: an OS file lock on ``<run>/.tunescope.lock``.

``tunescope run`` and ``tunescope report`` (and :meth:`Study.run`, :func:`rebuild_report`) hold
the lock from before they read the stored spec until their last write. A second process on the
same directory does not wait: it stops at once with one line naming the directory and the
holder's process id. The lock is ``flock(2)`` on an open file, so the operating system drops it
when the holder exits in any way (a killed process never leaves a stale lock behind); the file
itself stays (removing it would let two processes lock two different files).
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tunescope.errors import OutputError, TunescopeError

LOCK_NAME = ".tunescope.lock"
"""The lock file of a run directory (tunescope's own; never removed)."""


class RunDirectoryBusy(TunescopeError):
    """Another process holds the run directory's lock."""


def _holder(fd: int) -> str:
    """The process id the holder wrote into the lock file ("unknown" when not yet written)."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"


@contextmanager
def run_lock(root: str | os.PathLike) -> Iterator[Path]:
    """Hold the lock of run directory ``root`` (created if needed) for the ``with`` block.

    Raises :class:`RunDirectoryBusy` at once when another process holds it, and
    :class:`OutputError` when the directory or its lock file cannot be created."""
    root = Path(root)
    path = root / LOCK_NAME
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise OutputError(f"output directory {root} is not writable (cannot create its lock "
                          f"file {path.name}: {e.strerror or e})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise OutputError(f"cannot lock the run directory {root}: "
                                  f"{e.strerror or e}") from None
            raise RunDirectoryBusy(
                f"run directory {root} is in use by another tunescope process (PID "
                f"{_holder(fd)}); wait for it to finish or use another --out") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass        # the PID is only shown to a second process; the lock holds without it
        try:
            yield root
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
