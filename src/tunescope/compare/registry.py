"""Comparers register by analysis name, like the analyses themselves.

A comparer is ``(base: Result, tuned: Result, resampler: Resampler) -> list[dict]``: rows made
with :func:`tunescope.compare.table.row` or :func:`~tunescope.compare.table.bootstrap_rows`
(``analysis`` is filled in by :func:`tunescope.compare.compare_results`)::

    @comparer("prediction_consistency")
    def compare_prediction_consistency(base, tuned, resampler): ...
"""

from __future__ import annotations

from collections.abc import Callable

COMPARERS: dict[str, Callable] = {}
"""Analysis name -> comparer."""


def comparer(name: str) -> Callable:
    """Decorator registering ``fn`` as the comparer of analysis ``name``."""
    def wrap(fn):
        COMPARERS[name] = fn
        return fn
    return wrap
