"""The C2 section (docs/methods.md#c2): representation consistency, the geometry of
paraphrases over depth."""

from __future__ import annotations

import pandas as pd

from tunescope.report import figures
from tunescope.report.markup import details, note, table
from tunescope.report.sections.base import Context, model_tables, plot, section

C2_LEXICAL = "lexical control (word Jaccard)"
"""The reference series of the C2 AUC figure."""


def _c2_curve(t, pooling: str, source: str):
    """One model's per-layer rows of ``pooling`` and ``source`` without the final-normed
    layer, degenerate layers' values set to NaN (left out of the line)."""
    sub = t[t["pooling"] == pooling]
    if "source" in sub:
        sub = sub[sub["source"] == source]
    if "normed" in sub:
        sub = sub[~sub["normed"].astype(bool)]
    if "degenerate" in sub:
        bad = sub["degenerate"].astype(bool)
        sub = sub.assign(**{c: sub[c].where(~bad) for c in ("gap", "auc") if c in sub})
    return sub


def _c2_lexical(ctx: Context) -> tuple[dict[str, float], str]:
    """The lexical-control AUC per source (one set: it does not depend on the model) and a
    warning when the models' pairs differ."""
    tables = list(ctx.tables("lexical").items())
    if not tables:
        return {}, ""
    first = dict(zip(tables[0][1]["source"], tables[0][1]["auc"]))
    differ = any(dict(zip(t["source"], t["auc"])) != first for _, t in tables[1:])
    return first, (f"The models were run on different pairs: the lexical control shown is "
                   f"that of {tables[0][0]}'s pairs." if differ else "")


@section("representation_consistency", "C2 · Representation consistency (paraphrase geometry)")
def representation_consistency(ctx: Context) -> list[str]:
    layers = ctx.tables("layers")
    poolings = list(dict.fromkeys(p for t in layers.values() for p in t["pooling"]))
    sources = list(dict.fromkeys(["all"] + [s for t in layers.values() if "source" in t
                                            for s in t["source"]]))
    lexical, lexical_warning = _c2_lexical(ctx)
    colors = {**ctx.colors, C2_LEXICAL: "#999999"}
    parts = [note(lexical_warning, "warning")] if lexical_warning else []
    for metric, ylabel, ref, scoped, what in (
            ("auc", "ROC-AUC", 0.5, sources,
             "ROC-AUC of the cosine similarity separating paraphrases from non-paraphrases; 0.5 "
             "(dotted) = chance, 1 = every paraphrase pair is more similar than every "
             "non-paraphrase pair. The grey flat line is the lexical-overlap control: the same "
             "AUC from each pair's word overlap (Jaccard of lower-cased \\w+ words), the same "
             "for every model; a model line near it may only read surface overlap, and below "
             "0.5 it shows that the non-paraphrases share more words than the paraphrases"),
            ("gap", "cosine gap", 0.0, ["all"],
             "mean cosine similarity of paraphrase pairs minus that of non-paraphrase pairs "
             "over all pairs; above the dotted zero line paraphrases lie closer together")):
        panels = []
        for pooling in poolings:
            for source in scoped:
                per_model = {}
                for key, t in layers.items():
                    sub = _c2_curve(t, pooling, source)
                    if len(sub):
                        per_model[key] = {"x": sub["relative_depth"], "y": sub[metric]}
                if metric == "auc" and source in lexical and per_model:
                    per_model[C2_LEXICAL] = {"x": [0.0, 1.0], "y": [lexical[source]] * 2}
                if per_model:
                    title = f"{pooling} pooling" + ("" if len(scoped) == 1 else f" · {source}")
                    panels.append((title, per_model))
        per_source = (" and for each source of pairs ('all' = every pair)"
                      if len(scoped) > 1 else "")
        parts.append(plot(
            figures.line_panels(panels, colors, ylabel, reference=ref,
                                ylim=(0, 1.02) if metric == "auc" else None),
            f"Representation {metric} per layer, one line per model, one panel per pooling "
            f"(mean over tokens, last token, ...){per_source}: the {what}. x = relative depth "
            f"(0 = embedding output, 1 = the last block's output before the final norm), so "
            f"models of different depth line up. Degenerate layers (all pair cosines equal: "
            f"0.5 by construction) are left out (a break in the line; listed in the warnings "
            f"above); the last block's output through the final norm is in the tables below."))
    summaries = ctx.tables("summaries")
    if summaries:
        frame = pd.concat([t.assign(model=k) for k, t in summaries.items()], ignore_index=True)
        frame["95% CI"] = ["–" if pd.isna(a) or pd.isna(b) else f"[{a:.3f}, {b:.3f}]"
                           for a, b in zip(frame["ci_low"], frame["ci_high"])]
        frame["value"] = [("–" if pd.isna(v) else f"{v:.3f}") for v in frame["value"]]
        parts.append(details(
            "Pre-declared summaries: mean AUC and gap over layers and per depth band, with "
            "95% bootstrap CIs", note(
                "Per model, pooling and source of pairs: the mean over all layers (all_layers) "
                "and over the bands of relative depth early < 1/3 <= middle < 2/3 <= late "
                "(layer 0 = embedding output in early, the last block in late); degenerate "
                "layers and the final-normed output are left out (n_layers_used, "
                "layers_used). 95% CI: percentile bootstrap over pairs, resampled within each "
                "label, seed from the config.") + table(
                frame, ["model", "pooling", "source", "metric", "scope", "value", "95% CI",
                        "n_layers_used", "layers_used"], max_rows=500), open_=True))
    if lexical:
        parts.append(model_tables(ctx, "lexical", title="Lexical-overlap control per source "
                                                        "(word Jaccard of each pair)"))
    parts.append(model_tables(ctx, "layers"))
    return parts
