"""The report's "Tuned variants side by side" section: with two or more tuned models, which
model (and, for variants made by ``tunescope tune``, which data or seed) moved which metric.

It reads what the study computed: the base-vs-tuned comparison tables, rows of the
study-level figures (no key: e.g. ``macro_accuracy``, ``instruction_score``), one column per tuned
model holding tuned - base, marked ``*`` where the 95% bootstrap interval excludes zero. Above
it, the recipes of the tuned models that carry one (``tunescope-tune.json``: base, data and its
fingerprint, method, seed, steps, final loss), so that variants made with one recipe from one
base differ only in what the recipe table shows. Below it, the tuned models against each other
(:func:`tunescope.compare.compare_variants`, study-level rows).
"""

from __future__ import annotations

import math

import pandas as pd

from tunescope.report.markup import heading, note, table

ANCHOR = "variants"


def _marked(row) -> str:
    value = row["difference"]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    low, high = row.get("ci_low"), row.get("ci_high")
    sure = (low is not None and high is not None and not pd.isna(low) and not pd.isna(high)
            and (low > 0 or high < 0))
    return f"{value:+.4g}{' *' if sure else ''}"


def differences(comparisons: dict[str, pd.DataFrame], tuned: list[str]) -> pd.DataFrame:
    """Columns analysis, metric, then one per tuned model (tuned - base, ``*`` where the 95%
    interval excludes zero), for the rows without a key (study-level figures)."""
    rows = []
    for analysis, frame in comparisons.items():
        if frame is None or frame.empty or "key" not in frame:
            continue
        headline = frame[frame["key"].fillna("") == ""]
        for metric, group in headline.groupby("metric", sort=False):
            row = {"analysis": analysis, "metric": metric}
            for model in tuned:
                match = group[group["model"] == model]
                row[model] = _marked(match.iloc[0]) if len(match) else "–"
            rows.append(row)
    return pd.DataFrame(rows, columns=["analysis", "metric", *tuned])


def recipes(models: list[dict]) -> pd.DataFrame:
    """One row per tuned model with a recorded tuning recipe (model metadata ``tuned_by``)."""
    rows = []
    for m in models:
        made = (m.get("metadata") or {}).get("tuned_by")
        if m.get("role") == "tuned" and isinstance(made, dict):
            rows.append({"model": m["key"], **{k: made.get(k) for k in (
                "base", "data", "data_fingerprint", "n_examples", "method", "seed", "steps",
                "final_loss")}})
    return pd.DataFrame(rows)


def against_each_other(variants: dict[str, pd.DataFrame] | None) -> pd.DataFrame:
    """The study-level rows of the tuned-vs-tuned tables: analysis, metric, model, reference,
    their values, model - reference with its 95% interval, test and p-value."""
    columns = ["analysis", "metric", "model", "reference", "base", "tuned", "difference",
               "ci_low", "ci_high", "test", "p_value"]
    parts = [frame[frame["key"].fillna("") == ""] for frame in (variants or {}).values()
             if frame is not None and not frame.empty]
    if not parts:
        return pd.DataFrame(columns=columns)
    out = pd.concat(parts, ignore_index=True)[columns]
    return out.rename(columns={"base": "reference value", "tuned": "model value"})


def variants_section(models: list[dict], comparisons: dict[str, pd.DataFrame],
                     variants: dict[str, pd.DataFrame] | None = None) -> str:
    """The section's HTML, or "" with fewer than two tuned models."""
    tuned = [m["key"] for m in models if m.get("role") == "tuned"]
    if len(tuned) < 2:
        return ""
    parts = [heading(2, "Tuned variants side by side", ANCHOR),
             note("Each tuned model against the base, side by side: tuned - base for the "
                  "study-level figures of every analysis; * marks a 95% bootstrap interval "
                  "that excludes zero. Per-layer and per-relation rows are in each analysis's "
                  "section.")]
    made = recipes(models)
    if len(made):
        parts.append(note("Recipes of the variants made by tunescope tune: where they share "
                          "base, method and settings, the data (or seed) is what differs."))
        parts.append(table(made, list(made.columns)))
    frame = differences(comparisons, tuned)
    parts.append(table(frame, list(frame.columns)) if len(frame)
                 else note("No comparison tables yet."))
    pairs = against_each_other(variants)
    if len(pairs):
        parts.append(heading(3, "Tuned models against each other"))
        parts.append(note("Each tuned model against each one listed before it (reference), "
                          "with the same comparisons as against the base: difference = model "
                          "- reference, 95% bootstrap interval, the analysis's test. Per-layer "
                          "rows: compare/<analysis>.variants.parquet."))
        parts.append(table(pairs, list(pairs.columns)))
    return f'<section id="{ANCHOR}">{"".join(parts)}</section>'
