"""Consistency metrics of C1 from a table of predictions (pure functions, no model).

Input: one row per (relation, fact, template) with columns ``relation``, ``fact`` (the unit:
one (subject, object) of the relation; tables without it fall back to ``subject``),
``subject``, ``template``, ``prediction`` and ``correct`` (bool). Definitions (docs/methods.md#c1):

- accuracy: share of rows whose prediction is the gold object;
- consistency: over facts and unordered pairs of their templates, the share of pairs with the
  same prediction (pairs pooled over the relation's facts);
- consistent_subjects: share of facts (with >= 2 templates) whose predictions agree across all
  their templates (the study's name: a subject, asked about one object);
- consistent_and_correct: share of those facts correct under every template.

Two facts that share a subject (a country with two official languages) are two units: their
prompts are the same, and pooling them would count identical prompts as agreeing pairs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

METRICS = ("accuracy", "consistency", "consistent_subjects", "consistent_and_correct")


def unit(predictions: pd.DataFrame) -> str:
    """The column that names the unit of consistency: ``fact``, or ``subject`` in tables made
    before facts were recorded."""
    return "fact" if "fact" in predictions else "subject"


def _relation_metrics(rows: pd.DataFrame) -> dict:
    same_pairs = total_pairs = 0
    consistent = consistent_correct = judged = 0
    for _, group in rows.groupby(unit(rows), sort=False):
        n = len(group)
        if n < 2:
            continue
        counts = group["prediction"].value_counts().to_numpy()
        same_pairs += int((counts * (counts - 1) // 2).sum())
        total_pairs += n * (n - 1) // 2
        judged += 1
        agree = len(counts) == 1
        consistent += agree
        consistent_correct += bool(agree and group["correct"].all())
    return {
        "accuracy": float(rows["correct"].mean()) if len(rows) else np.nan,
        "consistency": same_pairs / total_pairs if total_pairs else np.nan,
        "consistent_subjects": consistent / judged if judged else np.nan,
        "consistent_and_correct": consistent_correct / judged if judged else np.nan,
        "n_queries": len(rows), "n_facts": rows[unit(rows)].nunique(),
        "n_subjects": rows["subject"].nunique(),
        "n_templates": rows["template"].nunique(), "n_template_pairs": total_pairs,
    }


def per_relation(predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per relation with the four metrics and the counts behind them."""
    rows = [{"relation": rel, **_relation_metrics(group)}
            for rel, group in predictions.groupby("relation", sort=False)]
    return pd.DataFrame(rows)


def macro(table: pd.DataFrame) -> dict:
    """Macro averages (mean over relations, ignoring undefined values) of the four metrics."""
    return {m: float(table[m].mean()) if len(table) else float("nan") for m in METRICS}
