"""Writing a file so that readers see either the old content or the new, never a part; and the
temporary files and folders such writes go through.

Every temporary name starts with :data:`TEMP_PREFIX`, so that what an interrupted write left
behind can be told apart from the user's own files (and only that is ever removed).

Permissions: what tunescope creates gets the modes the user's umask gives, as ``open`` and
``mkdir`` do (0644 and 0755 under umask 022, 0600 and 0700 under 077), unlike
``tempfile.mkstemp`` and ``mkdtemp``, which make 0600 and 0700 whatever the umask. The
temporary file or folder is created with mode 0o666 or 0o777 and the kernel applies the umask
(or the parent directory's default ACL, where it has one), so the umask is never read:
reading it means setting it (``os.umask``), which is process-wide and would race with other
threads creating files.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tunescope.errors import OutputError

TEMP_PREFIX = ".tunescope-tmp."
"""The start of the name of every temporary file and folder tunescope creates beside its
outputs: ``<TEMP_PREFIX><final name>.<random>`` (see :func:`temp_prefix`). A name with this
prefix in an output directory is the debris of an interrupted write, never a user's file."""

_ATTEMPTS = 100
"""Fresh random names tried before giving up (each collision is a 1 in 2**32 event)."""


def _create_unique(parent: Path, name: str, create: Callable[[Path], None]) -> Path:
    """Create a new ``parent/<TEMP_PREFIX><name>.<random>`` with ``create`` (which must fail
    with FileExistsError when the path exists) and return its path."""
    for _ in range(_ATTEMPTS):
        candidate = parent / f"{temp_prefix(name)}{secrets.token_hex(4)}"
        try:
            create(candidate)
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(errno.EEXIST, "no unused temporary name",
                          str(parent / f"{temp_prefix(name)}*"))


def make_temp_file(parent: str | os.PathLike, name: str = "") -> tuple[int, Path]:
    """Create a new empty file in ``parent`` for writing an output named ``name`` there
    atomically; return ``(file descriptor open for writing, path)``.

    The file is named ``<TEMP_PREFIX><name>.<random>`` and created exclusively with mode
    0o666 less the umask (the mode ``open`` gives), so that renaming it over the output leaves
    the output with the user's usual permissions. The caller closes the descriptor and renames
    or removes the file. Raises OSError like ``os.open``.
    """
    fds: list[int] = []

    def create(path: Path) -> None:
        fds.append(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666))

    path = _create_unique(Path(parent), name, create)
    return fds[0], path


def make_temp_dir(parent: str | os.PathLike, prefix: str = "") -> Path:
    """Create a new empty directory in ``parent`` and return its path: the place to build an
    output directory (a shard, a Result, a prepared model) before renaming it into place.

    Use it instead of ``tempfile.mkdtemp``, which makes the folder 0700 whatever the umask: this
    one is created with mode 0o777 less the umask (the mode ``mkdir`` gives, 0755 under umask
    022, 0700 under 077), so the renamed output is as readable as the user's other folders.
    The name is ``<TEMP_PREFIX><prefix>.<random>`` (pass the final name as ``prefix``), so an
    interrupted write's leftover is recognisable by :data:`TEMP_PREFIX`. ``parent`` must exist;
    the caller renames or removes the directory. Raises OSError like ``os.mkdir``.
    """
    return _create_unique(Path(parent), prefix, lambda path: path.mkdir(mode=0o777))


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory + os.replace.

    The file gets the permissions the umask gives a new file (as ``open`` would), also when it
    replaces an older one; missing parent directories are created (mode 0o777 less the umask).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = make_temp_file(path.parent, path.name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def temp_prefix(name: str) -> str:
    """The prefix of a temporary name for an output named ``name`` (for APIs that take a
    prefix, e.g. ``tempfile.NamedTemporaryFile``): ``<TEMP_PREFIX><name>.``."""
    return f"{TEMP_PREFIX}{name}."


def replace_dir(tmp: Path, target: Path) -> None:
    """Put the finished directory ``tmp`` (made by :func:`make_temp_dir` next to ``target``) in
    place of ``target``: an older ``target`` is first renamed aside, then removed, so at every
    moment ``target`` is either the old directory, absent, or the new one (never a mixture)."""
    target = Path(target)
    if target.exists():
        old = target.with_name(f"{temp_prefix(target.name)}old")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
        Path(tmp).rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        Path(tmp).rename(target)


@contextmanager
def fault(operation: str, path: Path) -> Iterator[None]:
    """Turn a file-system error inside the block into one :class:`OutputError` line naming the
    operation and the path (permission, missing folder, full disk, read-only file system)."""
    try:
        yield
    except OutputError:
        raise
    except OSError as e:
        where = e.filename if isinstance(e.filename, str) and e.filename else path
        raise OutputError(f"cannot {operation} {where}: {e.strerror or e}") from None
