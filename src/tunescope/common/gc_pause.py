"""Pausing Python's cycle collector around a burst of allocations.

Each full pass of the collector walks every container object alive; with a model loaded that
is hundreds of thousands, a fifth of a second a pass. Work that allocates many objects (a 33 MB
tokenizer.json parsed into Python dicts, a vocabulary's rule tables) sets off several passes
that find nothing to free. Inside :func:`paused` no pass runs; objects are still freed by
reference counting as usual, and any cycles made meanwhile wait for the next pass after it.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """No cycle-collector passes inside; the collector's former state is restored after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
