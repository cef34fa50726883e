"""The tidy comparison table: its columns, their types, and how rows are written.

One row compares one number of a base model with the same number of a tuned model:

``analysis``  the registered analysis name.
``metric``    what is compared (e.g. ``"accuracy"``, ``"auc"``, ``"relative_change"``).
``key``       the row's group: ``""`` for the whole analysis, else ``name=value`` parts joined
              with ``","`` (``"relation=P36"``, ``"pooling=mean,layer=3"``).
``depth``     relative depth in [0, 1] of per-layer rows, in the analysis' own convention (see
              each comparer); NaN for rows that are not per layer.
``base``, ``tuned``, ``difference`` (= tuned - base), ``ci_low``, ``ci_high`` (95% percentile
              bootstrap interval of the difference; NaN when not bootstrapped).
``test``      name of the test behind ``statistic`` / ``p_value`` (``"bootstrap_paired"``,
              ``"bootstrap_unpaired"``, ``"welch_one_sided_less"``, ...) or ``""``.
``n_base``, ``n_tuned``  the number of independent units (relations, subjects, pairs, examples,
              prompts, words, components) behind each side.
``note``      caveats in words (different architectures, interpolated depths, ...).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tunescope.errors import TunescopeError
from tunescope.stats.bootstrap import bootstrap_p, percentile_ci

COLUMNS = ["analysis", "metric", "key", "depth", "base", "tuned", "difference", "ci_low",
           "ci_high", "test", "statistic", "p_value", "n_base", "n_tuned", "note"]
"""The columns of every comparison table, in order."""

DTYPES = {"analysis": str, "metric": str, "key": str, "depth": "float64",
          "base": "float64", "tuned": "float64", "difference": "float64", "ci_low": "float64",
          "ci_high": "float64", "test": str, "statistic": "float64", "p_value": "float64",
          "n_base": "int64", "n_tuned": "int64", "note": str}

NAN = float("nan")


def key(**parts) -> str:
    """``key(block="subject", layer=3)`` -> ``"block=subject,layer=3"`` (in the given order)."""
    return ",".join(f"{name}={value}" for name, value in parts.items())


def _number(value) -> float:
    return NAN if value is None else float(value)


def row(metric: str, key: str = "", *, depth=NAN, base=NAN, tuned=NAN, ci_low=NAN, ci_high=NAN,
        test: str = "", statistic=NAN, p_value=NAN, n_base: int = 0, n_tuned: int = 0,
        note: str = "") -> dict:
    """One comparison row (``analysis`` is filled in later; ``difference`` = tuned - base).
    Numbers may be None (missing: NaN)."""
    base, tuned = _number(base), _number(tuned)
    return {"metric": metric, "key": key, "depth": _number(depth), "base": base, "tuned": tuned,
            "difference": tuned - base, "ci_low": _number(ci_low), "ci_high": _number(ci_high),
            "test": test, "statistic": _number(statistic), "p_value": _number(p_value),
            "n_base": int(n_base), "n_tuned": int(n_tuned), "note": note}


def frame(rows: list[dict], analysis: str) -> pd.DataFrame:
    """The comparison table of ``rows`` with the columns :data:`COLUMNS` and their dtypes;
    ``attrs["analysis"]`` names the analysis (also when there is no row)."""
    table = pd.DataFrame([{**r, "analysis": analysis} for r in rows], columns=COLUMNS)
    table = table.astype(DTYPES)
    table.attrs["analysis"] = analysis
    return table


def join_notes(*notes: str) -> str:
    """Non-empty notes joined with ``"; "``."""
    return "; ".join(n for n in notes if n)


def _per_row(value, k: int) -> list:
    return [value] * k if isinstance(value, str) else list(value)


def bootstrap_rows(metric, keys, base, tuned, base_replicates, tuned_replicates, *,
                   paired: bool, n_base, n_tuned, depths=None, notes="") -> list[dict]:
    """Rows for k compared values with bootstrap intervals.

    Args:
        metric, keys: the rows' metric names and keys, [k] each or one string for all.
        base, tuned: observed values [k].
        base_replicates, tuned_replicates: [n_boot, k] the same statistics under the bootstrap
            weights (the same weights for both when ``paired``).
        n_base, n_tuned: units behind each side (scalars or [k]); fewer than 2 on a side means
            no interval and no test.
        depths: [k] relative depths (None: NaN).
        notes: one note for all rows or [k].
    """
    base, tuned = np.atleast_1d(np.asarray(base, dtype=np.float64)), np.atleast_1d(
        np.asarray(tuned, dtype=np.float64))
    k = len(base)
    replicates = (np.asarray(tuned_replicates, dtype=np.float64)
                  - np.asarray(base_replicates, dtype=np.float64)).reshape(-1, k)
    low, high = percentile_ci(replicates)
    p = bootstrap_p(replicates)
    n_base = np.broadcast_to(np.asarray(n_base), (k,))
    n_tuned = np.broadcast_to(np.asarray(n_tuned), (k,))
    depths = np.full(k, np.nan) if depths is None else np.asarray(depths, dtype=np.float64)
    metrics, keys, notes = _per_row(metric, k), _per_row(keys, k), _per_row(notes, k)
    test = "bootstrap_paired" if paired else "bootstrap_unpaired"
    rows = []
    for i in range(k):
        ok = min(n_base[i], n_tuned[i]) >= 2 and np.isfinite(tuned[i] - base[i])
        rows.append(row(metrics[i], keys[i], depth=depths[i], base=base[i], tuned=tuned[i],
                        ci_low=low[i] if ok else np.nan, ci_high=high[i] if ok else np.nan,
                        test=test if ok else "", p_value=p[i] if ok else np.nan,
                        n_base=n_base[i], n_tuned=n_tuned[i], note=notes[i]))
    return rows


def model_name(result) -> str:
    """The model a Result belongs to, as its provenance names it."""
    return str(result.provenance.get("model", {}).get("name", "?"))


def need(result, table: str) -> pd.DataFrame:
    """``result.tables[table]``, or a :class:`TunescopeError` naming the model and the table."""
    if table not in result.tables:
        raise TunescopeError(f"the {result.analysis} result of model '{model_name(result)}' has "
                             f"no table '{table}' (tables: {', '.join(result.tables) or 'none'})")
    return result.tables[table]


def same_dataset(base, tuned) -> bool:
    """False when the two Results' provenance names different dataset fingerprints (units
    numbered alike, e.g. pair 0, are then different things); True otherwise."""
    prints = [(r.provenance.get("dataset") or {}).get("fingerprint") for r in (base, tuned)]
    return None in prints or prints[0] == prints[1]
