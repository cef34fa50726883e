"""The W2 section (docs/methods.md#w2, Wu et al. 2024): attention heads as word-word pairs,
knowledge pairs per layer and their share with an instruction verb."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tunescope.data.verbs import INSTRUCTION_VERBS
from tunescope.report import figures
from tunescope.report.markup import details, table
from tunescope.report.sections.base import (
    Context,
    block_depths,
    model_tables,
    plot,
    section,
)


def _analysed_layers(ctx: Context, key: str, seen) -> list[int]:
    config = (ctx.results[key].provenance.get("config") or {})
    if config.get("layers") is not None:
        return sorted(int(x) for x in config["layers"])
    n = ctx.n_layers(key)
    return list(range(n)) if n else sorted({int(x) for x in seen})


@section("attention_heads", "W2 · Attention heads as word–word pairs")
def attention_heads(ctx: Context) -> list[str]:
    knowledge = ctx.tables("knowledge")
    verbs = set(INSTRUCTION_VERBS)
    counts, shares = {}, {}
    for key, res in ctx.results.items():
        k = res.tables.get("knowledge")
        if k is None:
            continue
        a, b = _pair_columns(k)
        layers = _analysed_layers(ctx, key, k["layer"])
        per_layer = k.groupby("layer").size().reindex(layers, fill_value=0)
        with_verb = (k[a].isin(verbs) | k[b].isin(verbs)).groupby(k["layer"]).sum()
        share = with_verb.reindex(layers).astype(float) / per_layer.replace(0, np.nan)
        x = block_depths(layers, ctx.n_layers(key))
        counts[key] = {"x": x, "y": per_layer.to_numpy(dtype=float)}
        shares[key] = {"x": x, "y": share.to_numpy(dtype=float)}
    parts = [plot(
        figures.line_panels([("knowledge pairs per layer", counts),
                             ("share with an instruction verb", shares)],
                            ctx.colors, "", ncols=2),
        "Attention heads read as word pairs. Left: number of knowledge pairs per layer: for "
        "each head, the unordered, lower-cased word pairs {a, b} that it encodes in more than "
        "one distinct dimension (its 'knowledge'; a pair counts once per head, whichever word "
        "is query or key), summed over the layer's heads. Right: the share of those pairs that "
        "contain one of the study's 38 instruction verbs (write, explain, summarize, ...); more "
        "after tuning = heads encode more about instruction verbs. x = relative depth of the "
        "block ((layer + 1) / number of layers).")]
    tops = []
    for key, k in knowledge.items():
        a, b = _pair_columns(k)
        top = k.sort_values(["n_dims", "similarity"], ascending=False, kind="stable").head(10)
        tops.append(top.rename(columns={a: "word_a", b: "word_b"}).assign(model=key))
    if tops:
        parts.append(details("Top knowledge pairs of each model (unordered, lower-cased; most "
                             "distinct dimensions of the head, then similarity)",
                             table(pd.concat(tops, ignore_index=True),
                                   ["model", "layer", "head", "word_a", "word_b", "n_dims",
                                    "similarity"]), open_=True))
    parts.append(model_tables(ctx, "heads", title="Knowledge pairs per head (unordered, "
                              "lower-cased pairs in more than one dimension of the head)"))
    return parts


def _pair_columns(knowledge: pd.DataFrame) -> tuple[str, str]:
    """The two word columns of a W2 knowledge table: word_a, word_b (unordered pairs), or
    word_q, word_k in a Result saved before the pairs were counted unordered."""
    return ("word_a", "word_b") if "word_a" in knowledge.columns else ("word_q", "word_k")
