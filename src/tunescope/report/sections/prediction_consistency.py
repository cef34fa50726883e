"""The C1 section (docs/methods.md#c1): prediction consistency on ParaRel, zero-shot."""

from __future__ import annotations

from tunescope.report import figures
from tunescope.report.sections.base import Context, model_tables, plot, section

C1_METRICS = ("accuracy", "consistency", "consistent_subjects", "consistent_and_correct")


@section("prediction_consistency", "C1 · Prediction consistency (ParaRel, zero-shot)")
def prediction_consistency(ctx: Context) -> list[str]:
    per_relation = ctx.tables("per_relation")
    relations = list(dict.fromkeys(r for t in per_relation.values() for r in t["relation"]))
    bars = {}
    for key, t in per_relation.items():
        by = t.set_index("relation")["consistency"]
        bars[key] = [float(by.get(r, float("nan"))) for r in relations]
    parts = [plot(
        figures.grouped_bars([("consistency per relation", relations, bars)], ctx.colors,
                             "consistency", ylim=(0, 1.02), ncols=1),
        "Consistency per relation, base vs tuned: for each relation (x axis) one bar per model; "
        "the bar is the share of pairs of templates (paraphrased queries of the same fact) that "
        "got the same prediction, pooled over the relation's subjects. Higher = less sensitive "
        "to rephrasing; 1 = every paraphrase gives the same answer.")]
    kept = {key: t[~t["degenerate"].astype(bool)] if "degenerate" in t else t
            for key, t in per_relation.items()}
    macro = {key: [float(t[m].mean()) if m in t else float("nan") for m in C1_METRICS]
             for key, t in kept.items()}
    parts.append(plot(
        figures.grouped_bars([("macro averages over relations", list(C1_METRICS), macro)],
                             ctx.colors, "share", ylim=(0, 1.02), ncols=1),
        "The four C1 metrics, macro-averaged over relations, one bar per model. accuracy: "
        "prediction = gold object; consistency: as above; consistent_subjects: subjects whose "
        "predictions agree under every template; consistent_and_correct: subjects correct under "
        "every template (the strictest). Each relation ranks its full candidate set (all "
        "objects of its fact file; n_candidates in the table below); a relation with one "
        "candidate is left out of these averages."))
    parts.append(model_tables(ctx, "per_relation"))
    return parts
