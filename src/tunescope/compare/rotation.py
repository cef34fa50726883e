"""Base against tuned for W3: the "rotation" of feed-forward knowledge, as label shares.

Input: ``labels`` tables of :func:`~tunescope.analyses.ffn_concepts.ffn_concepts` (layer,
component, run, category, level) for a base and a tuned model. Layers are put in ``n_groups``
contiguous groups by relative depth (group = floor(layer * n_groups / n_layers)), so models of
different depth are comparable.

- Shares: per model, field ("category" or "level"), depth group and value, the share of all
  labels (every component, every run) with that value. 95% bootstrap CIs resample components
  with replacement within the group, each keeping all its runs (percentile intervals).
- Differences: tuned share minus base share, CI from independent bootstrap resamples of each
  model's components.
- Tests, per field and group: ``"chi2"``, per run, Pearson's chi-square test of homogeneity of
  the base and tuned value counts (one label per component in a run, so the counts are of
  independent units; values no model uses are dropped; a single remaining value gives
  statistic 0 and p 1); ``"permutation"``, across all runs (``run`` is missing), a permutation
  test whose statistic is the total variation distance between the base and tuned shares and
  whose units are components (each with all its runs), shuffled between the two models:
  p = (1 + #{permuted >= observed}) / (1 + n_permutations).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tunescope.compare.depth import depth_group
from tunescope.errors import TunescopeError
from tunescope.labels.concept_labels import CATEGORIES, LEVELS

FIELDS = {"category": CATEGORIES, "level": LEVELS}
"""The label fields compared and their canonical values."""

_REQUIRED = ("layer", "component", "run")


def _check(labels: pd.DataFrame, fields) -> None:
    missing = [c for c in (*_REQUIRED, *fields) if c not in labels.columns]
    if missing:
        raise TunescopeError(f"labels table lacks column(s) {', '.join(missing)}; expected "
                             f"{', '.join((*_REQUIRED, *FIELDS))}")


def _values(field: str, *tables: pd.DataFrame) -> list[str]:
    """The canonical values of ``field`` followed by any other value found (e.g. "unparsed")."""
    canonical = list(FIELDS.get(field, ()))
    seen = set().union(*(set(t[field].astype(str)) for t in tables))
    return canonical + sorted(seen - set(canonical))


def _n_layers(labels: pd.DataFrame, n_layers: int | None) -> int:
    if n_layers is not None:
        return int(n_layers)
    return int(labels["layer"].max()) + 1 if len(labels) else 1


def component_counts(labels: pd.DataFrame, field: str, values: list[str], n_layers: int,
                     n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Per component (unit): its depth group [n] and its counts of each value over runs
    [n, len(values)]."""
    index = {v: i for i, v in enumerate(values)}
    codes = labels[field].astype(str).map(index).to_numpy()
    units, unit_of = np.unique(labels[["layer", "component"]].to_numpy(), axis=0,
                               return_inverse=True)
    counts = np.zeros((len(units), len(values)))
    np.add.at(counts, (unit_of.reshape(-1), codes), 1.0)
    return depth_group(units[:, 0], n_layers, n_groups), counts


def _bootstrap_shares(counts: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Shares [n_boot, V] of ``counts`` [n, V] resampled by unit (multinomial weights)."""
    n = counts.shape[0]
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)          # [B, n]
    sums = weights @ counts
    return sums / sums.sum(axis=1, keepdims=True)


def _interval(samples: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(samples, [tail, 1.0 - tail], axis=0)
    return low, high


def label_shares(labels: pd.DataFrame, field: str = "category", n_layers: int | None = None,
                 n_groups: int = 4, n_boot: int = 1000, seed: int = 0,
                 confidence: float = 0.95, values: list[str] | None = None) -> pd.DataFrame:
    """Per depth group and value of ``field``, the share of labels with that value and its
    bootstrap CI (see module docstring). ``n_layers``: the model's depth (default: the
    largest labelled layer + 1). Shares of a group sum to 1.

    Columns: group, value, share, ci_low, ci_high, n_components, n_labels."""
    _check(labels, [field])
    values = values or _values(field, labels)
    groups, counts = component_counts(labels, field, values, _n_layers(labels, n_layers),
                                      n_groups)
    rng = np.random.default_rng(seed)
    parts = []
    for group in range(n_groups):
        c = counts[groups == group]
        if not len(c):
            continue
        low, high = _interval(_bootstrap_shares(c, n_boot, rng), confidence)
        parts.append(pd.DataFrame({"group": group, "value": values,
                                   "share": c.sum(0) / c.sum(), "ci_low": low, "ci_high": high,
                                   "n_components": len(c), "n_labels": int(c.sum())}))
    columns = ["group", "value", "share", "ci_low", "ci_high", "n_components", "n_labels"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def _tvd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Total variation distance between the share rows of count arrays (last axis: values)."""
    pa = a / a.sum(axis=-1, keepdims=True)
    pb = b / b.sum(axis=-1, keepdims=True)
    return 0.5 * np.abs(pa - pb).sum(axis=-1)


def permutation_test(base: np.ndarray, tuned: np.ndarray, n_permutations: int,
                     rng: np.random.Generator, chunk: int = 256) -> tuple[float, float]:
    """(TVD, p) of base [n_b, V] against tuned [n_t, V] per-component counts, shuffling
    components between the models (see module docstring)."""
    observed = float(_tvd(base.sum(0), tuned.sum(0)))
    counts = np.concatenate([base, tuned])
    total = counts.sum(0)
    n, n_b = len(counts), len(base)
    exceed, done = 0, 0
    while done < n_permutations:
        size = min(chunk, n_permutations - done)
        order = rng.random((size, n)).argsort(axis=1)[:, :n_b]
        mask = np.zeros((size, n))
        np.put_along_axis(mask, order, 1.0, axis=1)
        base_sum = mask @ counts
        exceed += int((_tvd(base_sum, total - base_sum) >= observed - 1e-12).sum())
        done += size
    return observed, (1 + exceed) / (1 + n_permutations)


def _chi2(base: np.ndarray, tuned: np.ndarray) -> tuple[float, int, float]:
    from scipy.stats import chi2_contingency
    table = np.stack([base, tuned])
    table = table[:, table.sum(0) > 0]
    if table.shape[1] < 2:
        return 0.0, 0, 1.0
    res = chi2_contingency(table)
    return float(res.statistic), int(res.dof), float(res.pvalue)


def rotation(base_labels: pd.DataFrame, tuned_labels: pd.DataFrame,
             base_n_layers: int | None = None, tuned_n_layers: int | None = None,
             n_groups: int = 4, n_boot: int = 1000, n_permutations: int = 1000, seed: int = 0,
             confidence: float = 0.95) -> dict[str, pd.DataFrame]:
    """Rotation of task and level shares from a base to a tuned model (module docstring).

    Returns tidy tables ``shares`` (model, field, group, value, share, ci_low, ci_high,
    n_components, n_labels), ``differences`` (field, group, value, base_share, tuned_share,
    difference, ci_low, ci_high) and ``tests`` (field, group, method, run, statistic, dof,
    p_value, n_base, n_tuned)."""
    fields = list(FIELDS)
    _check(base_labels, fields)
    _check(tuned_labels, fields)
    depth = {"base": _n_layers(base_labels, base_n_layers),
             "tuned": _n_layers(tuned_labels, tuned_n_layers)}
    tables = {"base": base_labels, "tuned": tuned_labels}
    rng = np.random.default_rng(seed)
    shares, diffs, tests = [], [], []
    for field in fields:
        values = _values(field, base_labels, tuned_labels)
        for model, table in tables.items():
            shares.append(label_shares(table, field, depth[model], n_groups, n_boot,
                                       int(rng.integers(2**32)), confidence, values)
                          .assign(model=model, field=field))
        units = {m: component_counts(t, field, values, depth[m], n_groups)
                 for m, t in tables.items()}
        for group in range(n_groups):
            b = units["base"][1][units["base"][0] == group]
            t = units["tuned"][1][units["tuned"][0] == group]
            if not len(b) or not len(t):
                continue
            boot = (_bootstrap_shares(t, n_boot, rng) - _bootstrap_shares(b, n_boot, rng))
            low, high = _interval(boot, confidence)
            base_share, tuned_share = b.sum(0) / b.sum(), t.sum(0) / t.sum()
            diffs.append(pd.DataFrame({"field": field, "group": group, "value": values,
                                       "base_share": base_share, "tuned_share": tuned_share,
                                       "difference": tuned_share - base_share,
                                       "ci_low": low, "ci_high": high}))
            stat, p = permutation_test(b, t, n_permutations, rng)
            tests.append({"field": field, "group": group, "method": "permutation", "run": None,
                          "statistic": stat, "dof": None, "p_value": p,
                          "n_base": len(b), "n_tuned": len(t)})
            for run in sorted(set(base_labels["run"]) | set(tuned_labels["run"])):
                per_run = {}
                for model, table in tables.items():
                    sub = table[(table["run"] == run)
                                & (depth_group(table["layer"], depth[model], n_groups) == group)]
                    per_run[model] = sub[field].astype(str).value_counts().reindex(
                        values, fill_value=0).to_numpy(dtype=float)
                if not per_run["base"].sum() or not per_run["tuned"].sum():
                    continue
                stat, dof, p = _chi2(per_run["base"], per_run["tuned"])
                tests.append({"field": field, "group": group, "method": "chi2", "run": int(run),
                              "statistic": stat, "dof": dof, "p_value": p,
                              "n_base": int(per_run["base"].sum()),
                              "n_tuned": int(per_run["tuned"].sum())})
    share_cols = ["model", "field", "group", "value", "share", "ci_low", "ci_high",
                  "n_components", "n_labels"]
    test_table = pd.DataFrame(tests, columns=["field", "group", "method", "run", "statistic",
                                              "dof", "p_value", "n_base", "n_tuned"])
    test_table = test_table.astype({"run": "Int64", "dof": "Int64"})
    diff_cols = ["field", "group", "value", "base_share", "tuned_share", "difference",
                 "ci_low", "ci_high"]
    return {"shares": pd.concat(shares, ignore_index=True)[share_cols],
            "differences": (pd.concat(diffs, ignore_index=True) if diffs
                            else pd.DataFrame(columns=diff_cols)),
            "tests": test_table}


def rotation_from_results(base, tuned, **options) -> dict[str, pd.DataFrame]:
    """:func:`rotation` of two ``ffn_concepts`` Results (with a ``labels`` table); each
    model's depth is read from its provenance."""
    for name, res in (("base", base), ("tuned", tuned)):
        if "labels" not in res.tables:
            raise TunescopeError(f"the {name} ffn_concepts result has no labels table "
                                 "(run it with a labeller)")
    depth = [res.provenance.get("model", {}).get("n_layers") for res in (base, tuned)]
    return rotation(base.tables["labels"], tuned.tables["labels"], depth[0], depth[1],
                    **options)
