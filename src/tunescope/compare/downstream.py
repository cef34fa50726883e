"""downstream_consistency (C3): accuracy on the originals and on the perturbed inputs, and
consistency, per mode (probe / zero-shot) and perturbation kind (and ``"all"``), tuned - base.

Per example and kind the counts behind the metrics are: whether the original is correct, the
number of (original, perturbed) pairs, how many perturbed inputs are correct and how many keep
the original's prediction (the definitions of
:func:`tunescope.analyses.downstream.consistency_metrics`). The bootstrap resamples examples
(each with all its perturbations), paired when both models were evaluated on the same examples
(for the probe: the same test split), else unpaired.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tunescope.analyses.downstream import ALL, ORIGINAL
from tunescope.compare.bootstrap import observed, ratio
from tunescope.compare.registry import comparer
from tunescope.compare.table import bootstrap_rows, key, need, same_dataset

METRICS = ("accuracy_original", "accuracy_perturbed", "consistency")


def example_counts(predictions: pd.DataFrame, mode: str) -> tuple[np.ndarray, dict]:
    """Example ids [n] (sorted) of one mode and, per kind (and ``"all"``), the metrics'
    numerators and denominators [n, 3] (in the order of :data:`METRICS`)."""
    sub = predictions[predictions["mode"] == mode]
    originals = sub[sub["kind"] == ORIGINAL].set_index("example_id")
    perturbed = sub[sub["kind"] != ORIGINAL]
    ids = np.array(sorted(set(perturbed["example_id"])), dtype=object)
    right = (originals["predicted"] == originals["gold"]).reindex(ids).to_numpy(np.float64)
    pairs = perturbed.assign(
        correct=(perturbed["predicted"] == perturbed["gold"]).astype(np.float64),
        agree=(perturbed["predicted"].to_numpy()
               == originals["predicted"].reindex(perturbed["example_id"]).to_numpy()
               ).astype(np.float64))
    kinds = list(dict.fromkeys(pairs["kind"]))
    parts = {}
    for kind in [*kinds, ALL]:
        rows = pairs if kind == ALL else pairs[pairs["kind"] == kind]
        per = rows.groupby("example_id").agg(n=("kind", "size"), correct=("correct", "sum"),
                                             agree=("agree", "sum")).reindex(ids, fill_value=0)
        has = (per["n"] > 0).to_numpy(np.float64)
        n = per["n"].to_numpy(np.float64)
        numerators = [right * has, per["correct"].to_numpy(), per["agree"].to_numpy()]
        parts[kind] = (np.stack(numerators, 1), np.stack([has, n, n], 1))
    return ids, parts


@comparer("downstream_consistency")
def compare_downstream(base, tuned, resampler) -> list[dict]:
    predictions = {"base": need(base, "predictions"), "tuned": need(tuned, "predictions")}
    modes = [m for m in dict.fromkeys(predictions["base"]["mode"])
             if m in set(predictions["tuned"]["mode"])]
    rows = []
    for mode in modes:
        (ids_b, parts_b), (ids_t, parts_t) = (example_counts(predictions[name], mode)
                                              for name in ("base", "tuned"))
        paired = same_dataset(base, tuned) and np.array_equal(ids_b, ids_t)
        w_base, w_tuned = resampler.pair(len(ids_b), len(ids_t), paired)
        for kind in [k for k in parts_b if k in parts_t]:
            (num_b, den_b), (num_t, den_t) = parts_b[kind], parts_t[kind]
            rows += bootstrap_rows(
                list(METRICS), key(mode=mode, perturbation=kind), observed(num_b, den_b),
                observed(num_t, den_t), ratio(w_base, num_b, den_b), ratio(w_tuned, num_t, den_t),
                paired=paired, n_base=int(den_b[:, 0].sum()), n_tuned=int(den_t[:, 0].sum()),
                notes="" if paired else "different examples: unpaired")
    return rows
