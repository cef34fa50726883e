"""Consistency metrics of C1 from a table of predictions (pure functions, no model).

Input: one row per (relation, subject, template) with columns ``relation``, ``subject``,
``template``, ``prediction`` and ``correct`` (bool). Definitions (METHODS.md, C1):

- accuracy: share of rows whose prediction is the gold object;
- consistency: over subjects and unordered pairs of their templates, the share of pairs with the
  same prediction (pairs pooled over the relation's subjects);
- consistent_subjects: share of subjects (with >= 2 templates) whose predictions agree across all
  their templates;
- consistent_and_correct: share of those subjects correct under every template.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

METRICS = ("accuracy", "consistency", "consistent_subjects", "consistent_and_correct")


def _relation_metrics(rows: pd.DataFrame) -> dict:
    same_pairs = total_pairs = 0
    consistent = consistent_correct = judged = 0
    for _, group in rows.groupby("subject", sort=False):
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
        "n_queries": len(rows), "n_subjects": rows["subject"].nunique(),
        "n_templates": rows["template"].nunique(), "n_template_pairs": total_pairs,
    }


def per_relation(predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per relation with the four metrics and the counts behind them."""
    rows = [{"relation": rel, **_relation_metrics(group)}
            for rel, group in predictions.groupby("relation", sort=False)]
    return pd.DataFrame(rows)


def macro(table: pd.DataFrame) -> dict:
    """Macro averages (mean over relations, ignoring undefined values) of the four metrics."""
    return {m: float(table[m].mean()) for m in METRICS}
