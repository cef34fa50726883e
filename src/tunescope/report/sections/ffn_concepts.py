"""The W3 section (docs/methods.md#w3, Wu et al. 2024): feed-forward concepts, explained
variance over depth and concept shares per depth group."""

from __future__ import annotations

import pandas as pd

from tunescope.compare.depth import N_GROUPS, depth_group
from tunescope.report import figures
from tunescope.report.markup import details, table
from tunescope.report.sections.base import (
    Context,
    block_depths,
    plot,
    section,
)


def _group_names(n_groups: int) -> list[str]:
    return [f"{100 * g // n_groups}–{100 * (g + 1) // n_groups}%" for g in range(n_groups)]


@section("ffn_concepts", "W3 · Feed-forward concepts")
def ffn_concepts(ctx: Context) -> list[str]:
    components = ctx.tables("components")
    variance = {}
    for key, t in components.items():
        top = t[t["component"] < 10].groupby("layer")["explained_variance"].sum()
        variance[key] = {"x": block_depths(top.index, ctx.n_layers(key)), "y": top.to_numpy()}
    parts = [plot(
        figures.line_panels([("variance of the top 10 components", variance)], ctx.colors,
                            "explained variance share", ncols=1),
        "Per layer, the share of the MLP down-projection's variance explained by its 10 "
        "largest principal components (x = relative depth, (layer + 1) / number of layers). "
        "Higher = the layer's "
        "knowledge is concentrated in fewer directions.")]
    labels = ctx.tables("labels")
    groups = _group_names(N_GROUPS)
    panels = []
    for key, t in labels.items():
        n = ctx.n_layers(key) or int(t["layer"].max()) + 1
        grouped = t.assign(group=depth_group(t["layer"].to_numpy(), n, N_GROUPS))
        for field in ("category", "level"):
            if field not in grouped:
                continue
            share = (grouped.groupby("group")[field].value_counts(normalize=True)
                     .unstack(fill_value=0.0).reindex(range(N_GROUPS)))
            panels.append((f"{key}: {field}", groups,
                           {str(v): share[v].to_numpy() for v in share.columns}))
    if panels:
        parts.append(plot(
            figures.stacked_shares(panels),
            "Concept shares per layer group: the described principal components of each "
            "quarter of the layers (by relative depth), labelled with a user task (category: "
            "writing, math, coding, translation, none) and a linguistic level; each bar gives "
            "the shares of the labels (all runs). Read the rows top to bottom: a shift of "
            "shares from base to tuned is the 'rotation' of FFN knowledge."))
    elif ctx.results:
        parts.append("<p class=\"note\">No concept labels (the analysis ran without a "
                     "labeller).</p>")
    top_words = ctx.tables("top_words")
    if top_words:
        rows = []
        for key, t in top_words.items():
            first = t[t["component"] == 0]
            for layer, sub in first.groupby("layer"):
                rows.append({"model": key, "layer": layer,
                             "top words of component 0": ", ".join(map(str, sub["word"].head(12)))})
        parts.append(details("Top words of each layer's first component",
                             table(pd.DataFrame(rows))))
    return parts
