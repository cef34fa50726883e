"""prediction_consistency (C1): accuracy and the three consistency metrics, per relation and
macro-averaged, tuned - base.

Per relation the metrics are ratios of per-fact counts (queries, correct queries, agreeing
template pairs, template pairs, judged / consistent / consistent-and-correct facts; see
:mod:`tunescope.analyses.helpers.consistency_metrics`), so a bootstrap over the relation's facts
re-weights those counts. Facts are paired when both models were asked about the same facts of
the relation (the same dataset), else resampled independently. Relations flagged degenerate
(one candidate object) are left out of the macro rows, as in the analysis' summary.

Macro rows (``macro_<metric>``, key ``""``): the mean over relations of each model's
per-relation values (undefined values skipped), with a paired bootstrap over the relations
both models have.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tunescope.analyses.helpers.consistency_metrics import METRICS, unit
from tunescope.compare.registry import comparer
from tunescope.compare.table import bootstrap_rows, key, need
from tunescope.stats.bootstrap import mean_parts, observed, ratio

FRACTIONS = {"accuracy": ("n_correct", "n_queries"),
             "consistency": ("same_pairs", "template_pairs"),
             "consistent_subjects": ("consistent", "judged"),
             "consistent_and_correct": ("consistent_correct", "judged")}
"""Each metric of a relation as (numerator, denominator) of summed per-subject counts."""


def fact_counts(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per (relation, fact) the counts behind the C1 metrics (the columns named in
    :data:`FRACTIONS`).

    ``predictions``: the analysis' predictions table (relation, fact, prediction, correct;
    ``subject`` stands in for ``fact`` in tables made before facts were recorded). A fact is
    judged when it has two or more templates; consistent when all its predictions agree;
    consistent-and-correct when, in addition, all are correct.
    """
    groups = ["relation", unit(predictions)]
    per = predictions.groupby(groups, sort=False, dropna=False)
    n = per.size()
    correct = per["correct"].sum().astype(np.int64)
    same = predictions.groupby([*groups, "prediction"], sort=False, dropna=False).size()
    agreeing = (same * (same - 1) // 2).groupby(level=[0, 1], sort=False).sum()
    distinct = same.groupby(level=[0, 1], sort=False).size()
    judged = n >= 2
    consistent = judged & (distinct.reindex(n.index) == 1)
    return pd.DataFrame({
        "n_correct": correct, "n_queries": n, "same_pairs": agreeing.reindex(n.index),
        "template_pairs": n * (n - 1) // 2, "consistent": consistent.astype(np.int64),
        "judged": judged.astype(np.int64),
        "consistent_correct": (consistent & (correct == n)).astype(np.int64)}).reset_index()


def _fraction_parts(counts: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    num = counts[[FRACTIONS[m][0] for m in METRICS]].to_numpy(np.float64)
    den = counts[[FRACTIONS[m][1] for m in METRICS]].to_numpy(np.float64)
    return num, den


@comparer("prediction_consistency")
def compare_prediction_consistency(base, tuned, resampler) -> list[dict]:
    counts = {name: fact_counts(need(res, "predictions"))
              for name, res in (("base", base), ("tuned", tuned))}
    degenerate = set()
    for res in (base, tuned):
        table = res.tables.get("per_relation")
        if table is not None and "degenerate" in table:
            degenerate |= set(table.loc[table["degenerate"].astype(bool), "relation"])
    relations = [r for r in dict.fromkeys(counts["base"]["relation"])
                 if r in set(counts["tuned"]["relation"])]
    rows, values = [], {"base": [], "tuned": []}
    for relation in relations:
        sides = {name: c[c["relation"] == relation] for name, c in counts.items()}
        ids = {name: side.iloc[:, 1].tolist() for name, side in sides.items()}
        paired = ids["base"] == ids["tuned"]
        w_base, w_tuned = resampler.pair(len(sides["base"]), len(sides["tuned"]), paired)
        obs, reps = {}, {}
        for name, w in (("base", w_base), ("tuned", w_tuned)):
            num, den = _fraction_parts(sides[name])
            obs[name], reps[name] = observed(num, den), ratio(w, num, den)
            if relation not in degenerate:
                values[name].append(obs[name])
        rows += bootstrap_rows(list(METRICS), key(relation=relation), obs["base"],
                               obs["tuned"], reps["base"], reps["tuned"], paired=paired,
                               n_base=len(sides["base"]), n_tuned=len(sides["tuned"]),
                               notes="; ".join(filter(None, [
                                   "" if paired else "different facts: unpaired",
                                   "one candidate: degenerate, not in the macro rows"
                                   if relation in degenerate else ""])))
    dropped = len(set(counts["base"]["relation"]) ^ set(counts["tuned"]["relation"]))
    note = f"{dropped} relation(s) of only one model left out" if dropped else ""
    macro_relations = [r for r in relations if r not in degenerate]
    if not macro_relations:
        return rows
    w = resampler.weights(len(macro_relations))
    macro = {}
    for name in ("base", "tuned"):
        num, den = mean_parts(np.array(values[name]))                       # [relations, 4]
        macro[name] = (observed(num, den), ratio(w, num, den))
    rows += bootstrap_rows([f"macro_{m}" for m in METRICS], "", macro["base"][0],
                           macro["tuned"][0], macro["base"][1], macro["tuned"][1], paired=True,
                           n_base=len(macro_relations), n_tuned=len(macro_relations),
                           notes=note)
    return rows
