"""Sections of the factual-recall mechanics (docs/methods.md#c4, Geva et al. 2023): attention
knockout, extraction rates and subject enrichment, all over relative depth."""

from __future__ import annotations

import pandas as pd

from tunescope.compare.recall import projection_of
from tunescope.report import figures
from tunescope.report.sections.base import Context, model_tables, plot, section

DEPTH = ("x = relative depth of the block ((layer + 1) / number of layers), so models of "
         "different depth line up.")


def _panels(tables: dict[str, pd.DataFrame], by: str, y: str, band: bool = False,
            titles: dict[str, str] | None = None) -> list[tuple[str, dict]]:
    """One panel per value of column ``by``: ``{model: {"x", "y"[, "low", "high"]}}``."""
    values = list(dict.fromkeys(v for t in tables.values() for v in t[by]))
    panels = []
    for value in values:
        per_model = {}
        for key, t in tables.items():
            sub = t[t[by] == value]
            if not len(sub):
                continue
            series = {"x": sub["relative_depth"], "y": sub[y]}
            if band:
                series.update(low=sub["ci_low"], high=sub["ci_high"])
            per_model[key] = series
        panels.append(((titles or {}).get(value, str(value)), per_model))
    return panels


def _examples_note(ctx: Context) -> list[str]:
    return [model_tables(ctx, "queries", title="Queries per relation and status (only "
                                                "correctly answered queries are analysed)"),
            model_tables(ctx, "examples", ["relation", "subject", "object", "prompt",
                                           "subject_tokens", "target", "probability"],
                         title="The analysed examples of each model")]


def _curve_section(ctx: Context, name: str, by: str, y: str, titles: dict, ylabel: str,
                   caption: str, band: bool = False, **style) -> list[str]:
    """One figure of ``y`` over relative depth with a panel per value of ``by`` (from each
    model's table ``name``), the tables, and the note on the analysed examples."""
    figure = figures.line_panels(_panels(ctx.tables(name), by, y, band=band, titles=titles),
                                 ctx.colors, ylabel, **style)
    return [plot(figure, f"{caption} {DEPTH}"), model_tables(ctx, name)] + _examples_note(ctx)


@section("attention_knockout", "C4 · Attention knockout")
def attention_knockout(ctx: Context) -> list[str]:
    return _curve_section(
        ctx, "curves", "block", "mean",
        {"subject": "subject tokens blocked", "non_subject": "non-subject tokens blocked",
         "last": "last token blocked"}, "relative change of p (%)",
        "Attention knockout curves per block set: for each layer, the attention edges from the "
        "last position to the blocked positions are removed in a window of layers centred on "
        "it, and the probability of the originally predicted token is measured again. y = mean "
        "relative change in percent (band: 95% CI over examples); a deep dip marks the layers "
        "where information flows from those positions to the prediction.", band=True,
        reference=0.0)


PROJECTION_TEXT = {
    "unembedding": "with the unembedding alone (W_U h, without the final norm, as in Geva et "
                   "al.'s released code)",
    "final_norm": "through the final norm and the unembedding (W_U final_norm(h), the logit "
                  "lens)",
}


def _projection_text(ctx: Context) -> str:
    """How the shown Results projected to the vocabulary; per model where they differ."""
    used = {key: projection_of(res) for key, res in ctx.results.items()}
    kinds = list(dict.fromkeys(used.values()))
    if not kinds:
        return "to the vocabulary"
    if len(kinds) == 1:
        return PROJECTION_TEXT.get(kinds[0], repr(kinds[0]))
    per = "; ".join(f"{key}: {PROJECTION_TEXT.get(p, repr(p))}" for key, p in used.items())
    return f"differently per model, so the curves are not comparable ({per})"


@section("extraction_rate", "C4 · Attribute extraction rate")
def extraction_rate(ctx: Context) -> list[str]:
    return _curve_section(
        ctx, "rates", "component", "rate",
        {"attn_out": "attention output", "mlp_out": "MLP output",
         "resid_post": "block output (residual)"}, "extraction rate",
        "Extraction rate per component: at the last position each layer's attention output, "
        f"MLP output and block output is projected {_projection_text(ctx)}; y = share of "
        "examples whose final prediction is already top-1 there. Where the attention curve "
        "rises, attention heads extract the attribute.", ylim=(-0.02, 1.02))


@section("subject_enrichment", "C4 · Subject enrichment")
def subject_enrichment(ctx: Context) -> list[str]:
    curves = ctx.tables("curves")
    titles = {"last_subject_token": "at the last subject token", "last_token": "at the last token"}
    prob = [(f"p(answer) {t}", m) for t, m in _panels(curves, "position", "mean_probability",
                                                     titles=titles)]
    rank = [(f"rank of answer {t}", m) for t, m in _panels(curves, "position", "median_rank",
                                                          titles=titles)]
    parts = [plot(
        figures.line_panels(prob, ctx.colors, "mean probability", ylim=(-0.02, 1.02), ncols=2),
        "Subject enrichment, probability: the logit lens (final norm + unembedding) applied to "
        "the block output at the last subject token and at the last token; y = mean probability "
        "of the gold object's first token. Rising early at the subject token = the subject "
        "representation is enriched with the attribute. " + DEPTH),
        plot(figures.line_panels(rank, ctx.colors, "median rank (log)", logy=True, ncols=2),
             "Subject enrichment, rank: median rank of the gold object's first token under the "
             "logit lens (1 = top prediction; log scale, lower is better). " + DEPTH)]
    return parts + [model_tables(ctx, "curves")] + _examples_note(ctx)
