"""downstream_consistency (C3): accuracy on the originals and on the perturbed inputs,
consistency and Cohen's kappa, per mode (probe / zero-shot / calibrated zero-shot) and
perturbation kind (and ``"all"``), tuned - base.

Per example and kind the counts behind the metrics are: whether the original is correct, the
number of (original, perturbed) pairs, how many perturbed inputs are correct and how many keep
the original's prediction (the definitions of
:func:`tunescope.analyses.downstream_consistency.consistency_metrics`); for kappa also, per label, how many
of the example's pairs have that label as the original's prediction and how many as the
perturbed input's. A replicate's kappa is computed from its weighted sums of those counts
(NaN where it is undefined, e.g. a constant predictor; such replicates are left out of the
interval). The bootstrap resamples examples (each with all its perturbations), paired when both
models were evaluated on the same examples (for the probe: the same test split), else unpaired.

A mode in which a model is a constant predictor (every original input given one label,
:func:`~tunescope.analyses.downstream_consistency.constant_predictors`) gets a note on each of its rows
naming the model and its label: its consistency is high by construction, so the difference is
not an effect of tuning on robustness.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tunescope.analyses.downstream_consistency import ALL, ORIGINAL, constant_predictors
from tunescope.compare.registry import comparer
from tunescope.compare.table import bootstrap_rows, join_notes, key, need, same_dataset
from tunescope.stats.bootstrap import observed, ratio

METRICS = ("accuracy_original", "accuracy_perturbed", "consistency")
"""The ratio metrics of :func:`example_counts` (kappa comes from :class:`KappaCounts`)."""


@dataclass
class KappaCounts:
    """Per-example counts [n] / [n, n_labels] behind Cohen's kappa of one (mode, kind)."""

    pairs: np.ndarray      # [n] (original, perturbed) pairs of the example
    agree: np.ndarray      # [n] pairs whose two predictions agree
    original: np.ndarray   # [n, L] pairs whose original prediction is label l
    perturbed: np.ndarray  # [n, L] pairs whose perturbed prediction is label l

    def kappa(self, weights: np.ndarray) -> np.ndarray:
        """Kappa under each replicate's example weights [n_boot, n]: [n_boot] (NaN where the
        chance agreement is 1, i.e. both prediction lists are one and the same label, or the
        replicate holds no pair)."""
        n = weights @ self.pairs
        with np.errstate(invalid="ignore", divide="ignore"):
            p_o = (weights @ self.agree) / n
            p_e = ((weights @ self.original) * (weights @ self.perturbed)).sum(1) / n ** 2
            out = (p_o - p_e) / (1.0 - p_e)
        return np.where((n > 0) & (1.0 - p_e > 1e-12), out, np.nan)


def example_counts(predictions: pd.DataFrame, mode: str) -> tuple[np.ndarray, dict]:
    """Example ids [n] (sorted) of one mode and, per kind (and ``"all"``), the metrics'
    numerators and denominators [n, 3] (in the order of :data:`METRICS`) and the
    :class:`KappaCounts`."""
    sub = predictions[predictions["mode"] == mode]
    originals = sub[sub["kind"] == ORIGINAL].set_index("example_id")
    perturbed = sub[sub["kind"] != ORIGINAL]
    ids = np.array(sorted(set(perturbed["example_id"])), dtype=object)
    right = (originals["predicted"] == originals["gold"]).reindex(ids).to_numpy(np.float64)
    before = originals["predicted"].reindex(perturbed["example_id"]).to_numpy()
    labels = sorted(set(before) | set(perturbed["predicted"]))
    pairs = perturbed.assign(
        correct=(perturbed["predicted"] == perturbed["gold"]).astype(np.float64),
        agree=(perturbed["predicted"].to_numpy() == before).astype(np.float64),
        **{f"orig_{i}": (before == y).astype(np.float64) for i, y in enumerate(labels)},
        **{f"pert_{i}": (perturbed["predicted"].to_numpy() == y).astype(np.float64)
           for i, y in enumerate(labels)})
    kinds = list(dict.fromkeys(pairs["kind"]))
    columns = ["correct", "agree", *(f"orig_{i}" for i in range(len(labels))),
               *(f"pert_{i}" for i in range(len(labels)))]
    parts = {}
    for kind in [*kinds, ALL]:
        rows = pairs if kind == ALL else pairs[pairs["kind"] == kind]
        per = rows.groupby("example_id")[columns].sum().reindex(ids, fill_value=0.0)
        n = rows.groupby("example_id").size().reindex(ids, fill_value=0).to_numpy(np.float64)
        has = (n > 0).astype(np.float64)
        numerators = [right * has, per["correct"].to_numpy(), per["agree"].to_numpy()]
        kappa = KappaCounts(
            n, per["agree"].to_numpy(),
            per[[f"orig_{i}" for i in range(len(labels))]].to_numpy(),
            per[[f"pert_{i}" for i in range(len(labels))]].to_numpy())
        parts[kind] = (np.stack(numerators, 1), np.stack([has, n, n], 1), kappa)
    return ids, parts


def constant_note(mode: str, base: dict[str, str], tuned: dict[str, str]) -> str:
    """The row note naming the model(s) that are constant predictors in ``mode`` ("" if none)."""
    who = [f"{name} (always {labels[mode]!r})" for name, labels in (("base", base),
                                                                    ("tuned", tuned))
           if mode in labels]
    if not who:
        return ""
    return (f"constant predictor in {mode}: {' and '.join(who)}; its consistency is high by "
            f"construction, so the difference is not a robustness effect")


@comparer("downstream_consistency")
def compare_downstream(base, tuned, resampler) -> list[dict]:
    predictions = {"base": need(base, "predictions"), "tuned": need(tuned, "predictions")}
    constant = {name: constant_predictors(p) for name, p in predictions.items()}
    modes = [m for m in dict.fromkeys(predictions["base"]["mode"])
             if m in set(predictions["tuned"]["mode"])]
    rows = []
    for mode in modes:
        (ids_b, parts_b), (ids_t, parts_t) = (example_counts(predictions[name], mode)
                                              for name in ("base", "tuned"))
        paired = same_dataset(base, tuned) and np.array_equal(ids_b, ids_t)
        w_base, w_tuned = resampler.pair(len(ids_b), len(ids_t), paired)
        note = join_notes("" if paired else "different examples: unpaired",
                          constant_note(mode, constant["base"], constant["tuned"]))
        for kind in [k for k in parts_b if k in parts_t]:
            (num_b, den_b, kappa_b), (num_t, den_t, kappa_t) = parts_b[kind], parts_t[kind]
            one = np.ones((1, len(ids_b))), np.ones((1, len(ids_t)))
            rows += bootstrap_rows(
                [*METRICS, "kappa"], key(mode=mode, perturbation=kind),
                np.append(observed(num_b, den_b), kappa_b.kappa(one[0])),
                np.append(observed(num_t, den_t), kappa_t.kappa(one[1])),
                np.column_stack([ratio(w_base, num_b, den_b), kappa_b.kappa(w_base)]),
                np.column_stack([ratio(w_tuned, num_t, den_t), kappa_t.kappa(w_tuned)]),
                paired=paired, n_base=int(den_b[:, 0].sum()), n_tuned=int(den_t[:, 0].sum()),
                notes=note)
    return rows
