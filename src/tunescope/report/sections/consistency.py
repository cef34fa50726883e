"""Sections of the consistency study (METHODS.md C1-C3): prediction, representation and
downstream consistency."""

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
    macro = {key: [float(t[m].mean()) if m in t else float("nan") for m in C1_METRICS]
             for key, t in per_relation.items()}
    parts.append(plot(
        figures.grouped_bars([("macro averages over relations", list(C1_METRICS), macro)],
                             ctx.colors, "share", ylim=(0, 1.02), ncols=1),
        "The four C1 metrics, macro-averaged over relations, one bar per model. accuracy: "
        "prediction = gold object; consistency: as above; consistent_subjects: subjects whose "
        "predictions agree under every template; consistent_and_correct: subjects correct under "
        "every template (the strictest)."))
    parts.append(model_tables(ctx, "per_relation"))
    return parts


@section("representation_consistency", "C2 · Representation consistency (paraphrase geometry)")
def representation_consistency(ctx: Context) -> list[str]:
    layers = ctx.tables("layers")
    poolings = list(dict.fromkeys(p for t in layers.values() for p in t["pooling"]))
    parts = []
    for metric, ylabel, ref, what in (
            ("gap", "cosine gap", 0.0,
             "mean cosine similarity of paraphrase pairs minus that of non-paraphrase pairs; "
             "above the dotted zero line paraphrases lie closer together"),
            ("auc", "ROC-AUC", 0.5,
             "ROC-AUC of the cosine similarity separating paraphrases from non-paraphrases; 0.5 "
             "(dotted) = chance, 1 = every paraphrase pair is more similar than every "
             "non-paraphrase pair")):
        panels = []
        for pooling in poolings:
            per_model = {}
            for key, t in layers.items():
                sub = t[t["pooling"] == pooling]
                if len(sub):
                    per_model[key] = {"x": sub["relative_depth"], "y": sub[metric]}
            panels.append((f"{pooling} pooling", per_model))
        parts.append(plot(
            figures.line_panels(panels, ctx.colors, ylabel, reference=ref,
                                ylim=(0, 1.02) if metric == "auc" else None),
            f"Representation {metric} per layer, one line per model, one panel per pooling "
            f"(mean over tokens, last token, ...): the {what}. x = relative depth (0 = embedding "
            f"output, 1 = last block), so models of different depth line up."))
    parts.append(model_tables(ctx, "layers"))
    return parts


@section("downstream_consistency", "C3 · Downstream consistency (perturbed task inputs)")
def downstream_consistency(ctx: Context) -> list[str]:
    metrics = ctx.tables("metrics")
    modes = list(dict.fromkeys(m for t in metrics.values() for m in t["mode"]))
    panels = []
    for mode in modes:
        kinds = list(dict.fromkeys(k for t in metrics.values()
                                   for k in t.loc[t["mode"] == mode, "kind"]))
        per_model = {}
        for key, t in metrics.items():
            by = t[t["mode"] == mode].set_index("kind")["consistency"]
            per_model[key] = [float(by.get(k, float("nan"))) for k in kinds]
        panels.append((f"{mode}", kinds, per_model))
    parts = [plot(
        figures.grouped_bars(panels, ctx.colors, "consistency", ylim=(0, 1.02)),
        "Downstream consistency per perturbation kind (x axis; 'all' pools every kind), one bar "
        "per model, one panel per prediction mode (probe: logistic regression on frozen "
        "representations; zero_shot: label words scored by log-likelihood). A bar is the share "
        "of (original, perturbed) inputs given the same label; 1 = the perturbation never "
        "changes the prediction. Accuracies are in the table below.")]
    parts.append(model_tables(ctx, "metrics", ["mode", "kind", "accuracy_original",
                                               "accuracy_perturbed", "consistency", "n_pairs"],
                              title="Accuracy and consistency per mode and perturbation kind"))
    return parts
