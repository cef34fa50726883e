"""Progress bars for long work (rich); nested bars share one display; silent when disabled."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

_active: Progress | None = None


class _Bar:
    def __init__(self, display: Progress | None, task):
        self._display, self._task = display, task

    def advance(self, n: int = 1) -> None:
        if self._display is not None:
            self._display.advance(self._task, n)

    def note(self, text: str) -> None:
        """Show ``text`` after the bar (e.g. the current loss and speed)."""
        if self._display is not None:
            self._display.update(self._task, note=text)


def enabled() -> bool:
    """Bars show on an interactive terminal unless ``TUNESCOPE_PROGRESS=0``; ``=1`` forces them."""
    setting = os.environ.get("TUNESCOPE_PROGRESS")
    if setting is not None:
        return setting not in ("0", "false", "no", "")
    return sys.stderr.isatty()


@contextmanager
def progress(total: int, desc: str, min_total: int = 2):
    """A progress bar over ``total`` units of work on stderr; yields an object with ``advance``.

    A bar opened while another is showing joins the same display (one line each)."""
    global _active
    if not enabled() or total < min_total:
        yield _Bar(None, None)
        return
    if _active is not None:
        task = _active.add_task(desc, total=total, note="")
        try:
            yield _Bar(_active, task)
        finally:
            _active.remove_task(task)
        return
    display = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TimeRemainingColumn(), TextColumn("{task.fields[note]}"), transient=True,
                       console=Console(stderr=True))
    _active = display
    try:
        with display:
            yield _Bar(display, display.add_task(desc, total=total, note=""))
    finally:
        _active = None
