"""compare_results / compare_study: base against tuned, one analysis at a time."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tunescope.compare.registry import COMPARERS
from tunescope.compare.table import COLUMNS, frame, join_notes, same_dataset
from tunescope.errors import TunescopeError
from tunescope.result import Result
from tunescope.stats.bootstrap import Resampler

UNCOMPARED_SETTINGS = frozenset({"batch_size", "rows_per_pass", "chunk"})
"""Config fields that change speed or memory only, never the numbers."""


def architecture_note(base: Result, tuned: Result) -> str:
    """``"different architectures: family a vs b, n_layers 3 vs 4"`` when the models' family or
    depth differ (from the Results' provenance), else ``""``."""
    models = [r.provenance.get("model", {}) for r in (base, tuned)]
    parts = [f"{field} {models[0].get(field)} vs {models[1].get(field)}"
             for field in ("family", "n_layers")
             if models[0].get(field) != models[1].get(field)]
    return f"different architectures: {', '.join(parts)}" if parts else ""


def setting_notes(base: Result, tuned: Result) -> str:
    """Notes on config fields and datasets that differ between the two Results."""
    configs = [r.provenance.get("config") or {} for r in (base, tuned)]
    fields = [f for f in dict.fromkeys([*configs[0], *configs[1]])
              if f not in UNCOMPARED_SETTINGS and configs[0].get(f) != configs[1].get(f)]
    changes = [f"{f} {configs[0].get(f)!r} vs {configs[1].get(f)!r}" for f in fields]
    notes = [f"settings differ: {', '.join(changes)}" if changes else ""]
    if not same_dataset(base, tuned):
        notes.append("different datasets")
    return join_notes(*notes)


def compare_results(base: Result, tuned: Result, *, n_boot: int = 1000,
                    seed: int = 0) -> pd.DataFrame:
    """Compare one analysis' Result of a base model with that of a tuned model.

    Returns the tidy table of :data:`~tunescope.compare.table.COLUMNS` (see
    :mod:`tunescope.compare.table`), one row per compared number; differences are tuned - base,
    with 95% percentile bootstrap intervals from ``n_boot`` replicates drawn from
    ``numpy.random.default_rng(seed)`` (the same seed gives the same table). An analysis
    without a comparer gives an empty table. Every row's note says when the architectures,
    settings or datasets of the two Results differ.
    """
    if base.analysis != tuned.analysis:
        raise TunescopeError(f"cannot compare a '{base.analysis}' result with a "
                             f"'{tuned.analysis}' result")
    if int(n_boot) < 1:
        raise TunescopeError(f"n_boot must be a positive number of replicates, got {n_boot}")
    compare = COMPARERS.get(base.analysis)
    if compare is None:
        return frame([], base.analysis)
    rows = compare(base, tuned, Resampler(np.random.default_rng(seed), int(n_boot)))
    shared = join_notes(architecture_note(base, tuned), setting_notes(base, tuned))
    for r in rows:
        r["note"] = join_notes(shared, r["note"])
    return frame(rows, base.analysis)


def compare_study(results: dict[str, Result], base: str, *, n_boot: int = 1000,
                  seed: int = 0) -> pd.DataFrame:
    """Compare the base model's Result of ONE analysis with each tuned model's.

    ``results``: {model key: Result} (all of one analysis); ``base``: the base model's key.
    Returns the tables of :func:`compare_results` (each with the same ``seed``) concatenated in
    the order of ``results``, with a leading column ``model`` (the tuned model's key). When
    there is nothing to compare (no comparer for the analysis, no tuned Result, or no base
    Result) the table is empty, with the same columns; ``attrs["analysis"]`` names the analysis.
    """
    names = sorted({r.analysis for r in results.values()})
    if len(names) > 1:
        raise TunescopeError(f"compare_study takes the Results of one analysis, got "
                             f"{', '.join(names)}")
    analysis = names[0] if names else ""
    parts = []
    if base in results:
        for model, result in results.items():
            if model != base:
                table = compare_results(results[base], result, n_boot=n_boot, seed=seed)
                parts.append(table.assign(model=model)[["model", *COLUMNS]])
    if not parts:
        parts = [frame([], analysis).assign(model=pd.Series(dtype=str))[["model", *COLUMNS]]]
    out = pd.concat(parts, ignore_index=True)
    out.attrs["analysis"] = analysis
    return out


def compare_variants(results: dict[str, Result], tuned: list[str], *, n_boot: int = 1000,
                     seed: int = 0) -> pd.DataFrame:
    """Tuned models of ONE analysis against each other: each model of ``tuned`` against each
    one listed before it (its ``reference``), by :func:`compare_results` (the reference in the
    ``base`` column, the model in ``tuned``; ``difference`` = model - reference). For variants
    made from one base with one recipe, this says which data (or seed) moved a metric.

    Returns the columns ``model``, ``reference``, then :data:`COLUMNS`; empty (same columns)
    with fewer than two of ``tuned`` in ``results``."""
    present = [k for k in tuned if k in results]
    analysis = next((r.analysis for r in results.values()), "")
    parts = []
    for i, reference in enumerate(present):
        for model in present[i + 1:]:
            table = compare_results(results[reference], results[model], n_boot=n_boot,
                                    seed=seed)
            parts.append(table.assign(model=model, reference=reference)[
                ["model", "reference", *COLUMNS]])
    if not parts:
        parts = [frame([], analysis).assign(model=pd.Series(dtype=str),
                                            reference=pd.Series(dtype=str))[
            ["model", "reference", *COLUMNS]]]
    out = pd.concat(parts, ignore_index=True)
    out.attrs["analysis"] = analysis
    return out
