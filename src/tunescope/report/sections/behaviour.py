"""Sections of the behaviour-shift study (METHODS.md W1-W3, Wu et al. 2024): gradient
attribution with instruction scores and token heatmaps, attention heads as word pairs, and
feed-forward concepts; plus the quick next-token look."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tunescope.analyses.heads_compare import depth_group
from tunescope.data.verbs import INSTRUCTION_VERBS
from tunescope.report import figures
from tunescope.report.heatmap import token_heatmap
from tunescope.report.markup import details, esc, fmt, note, table
from tunescope.report.sections.base import Context, model_tables, plot, section

N_EXAMPLES = 3
"""How many example prompts get token heatmaps."""
RESPONSE_CHARS = 500
"""Longest response text shown under a heatmap (characters)."""
N_GROUPS = 4
"""Depth groups of the FFN concept shares (as in :mod:`tunescope.analyses.rotation`)."""


def _example_ids(ctx: Context, density: dict[str, pd.DataFrame]) -> list[str]:
    """Up to :data:`N_EXAMPLES` prompt ids, preferring those every model has, in the order of
    the first model's table."""
    ordered = list(dict.fromkeys(i for t in density.values() for i in t["id"]))
    everywhere = [i for i in ordered if all((t["id"] == i).any() for t in density.values())]
    rest = [i for i in ordered if i not in everywhere]
    return (everywhere + rest)[:N_EXAMPLES]


def _heatmaps(ctx: Context) -> str:
    density = ctx.tables("token_density")
    if not density:
        return ""
    per_prompt = ctx.tables("per_prompt")
    blocks = []
    for pid in _example_ids(ctx, density):
        rows = []
        source = ""
        for key, t in density.items():
            sub = t[t["id"] == pid].sort_values("position")
            if not len(sub):
                continue
            info = per_prompt.get(key, pd.DataFrame(columns=["id"]))
            match = info[info["id"] == pid]
            score, response = np.nan, ""
            if len(match):
                score = match["instruction_score"].iloc[0]
                response = str(match["response"].iloc[0]) if "response" in match else ""
                source = str(match["source"].iloc[0]) if "source" in match else source
            if len(response) > RESPONSE_CHARS:
                response = response[:RESPONSE_CHARS - 1] + "…"
            if len(match) and _is_empty(match.iloc[0]):
                response = "(empty: the model stopped at once; scored 0)"
            heat = token_heatmap([str(t_) for t_ in sub["token"]], sub["density"].tolist(),
                                 sub["instruction"].astype(bool).tolist(),
                                 title=f"{key} · instruction score {fmt(score)}")
            color = esc(ctx.colors.get(key, figures.BASE_COLOR))
            rows.append(f'<div class="heatmap-model" style="border-left: 4px solid {color};">'
                        f'{heat}<div class="response"><span class="response-label">response:'
                        f'</span> {esc(response)}</div></div>')
        where = f" · source {esc(source)}" if source else ""
        blocks.append(f'<div class="heatmap-example"><h4>prompt {esc(pid)}{where}</h4>'
                      f'{"".join(rows)}</div>')
    caption = ("Token heatmaps of example prompts, one row per model: each prompt token is "
               "shaded by its normalised attribution density (darker red = the response "
               "depends more on it; 1 = the prompt's most important token); instruction tokens "
               "are underlined in blue. A tuned model that attends to its instruction shows dark "
               "underlined tokens. The greedy response is shown below each row.")
    return (f'<figure class="heatmaps">{"".join(blocks)}'
            f'<figcaption>{esc(caption)}</figcaption></figure>')


def _is_empty(row) -> bool:
    """Whether a per-prompt row's response is empty (older results: no response tokens)."""
    if "empty_response" in row and not pd.isna(row["empty_response"]):
        return bool(row["empty_response"])
    return "n_response_tokens" in row and row["n_response_tokens"] == 0


def _format_notes(ctx: Context) -> list[str]:
    """Per model: how its prompts were shown (chat template or raw) and how many responses were
    empty (scored 0, as in the study; a warning, since they pull the mean down)."""
    out = []
    for key, res in ctx.results.items():
        table_ = res.tables.get("per_prompt")
        if table_ is None or not len(table_):
            continue
        n_empty = int(sum(_is_empty(r) for _, r in table_.iterrows()))
        form = res.summary.get("prompt_format")
        shown = {"chat": "through its chat template", "raw": "as raw text"}.get(form)
        line = f"{key}: prompts shown {shown}" if shown else f"{key}:"
        if n_empty:
            out.append(note(f"{line}; {n_empty} of {len(table_)} responses empty (the model "
                            "stopped at once), each scored 0 as in the study.", "warning"))
        elif shown:
            out.append(note(f"{line}; no empty response."))
    return out


@section("attribution", "W1 · Gradient attribution and instruction importance")
def attribution(ctx: Context) -> list[str]:
    per_prompt = ctx.tables("per_prompt")
    scores = {k: t["instruction_score"] for k, t in per_prompt.items()}
    parts = [*_format_notes(ctx), plot(
        figures.box_strip(scores, ctx.colors, "instruction score"),
        "Instruction-score distribution per model (box: quartiles and median; whiskers: 1.5 "
        "IQR; dots: one prompt each). The score sums the normalised attribution density of the "
        "instruction tokens, divided by log2(2 + their number): higher = the response depends "
        "more on the instruction. The study expects tuned > base (one-sided Welch test in the "
        "comparison table)."), _heatmaps(ctx)]
    parts.append(model_tables(ctx, "by_source", title="Instruction score per prompt source"))
    parts.append(model_tables(ctx, "per_prompt", ["id", "source", "category", "n_prompt_tokens",
                                                  "n_instruction_tokens", "n_response_tokens",
                                                  "empty_response", "prompt_format",
                                                  "instruction_score", "response"],
                              title="Per-prompt scores and responses"))
    return parts


def _relative_depth(layers, n_layers: int | None) -> np.ndarray:
    """layer / (n_layers - 1): 0 = first block, 1 = last block."""
    layers = np.asarray(layers, dtype=np.float64)
    if not n_layers or n_layers < 2:
        return np.zeros_like(layers)
    return layers / (n_layers - 1)


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
        x = _relative_depth(layers, ctx.n_layers(key))
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
        "after tuning = heads encode more about instruction verbs. x = layer / (layers − 1).")]
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


def _group_names(n_groups: int) -> list[str]:
    return [f"{100 * g // n_groups}–{100 * (g + 1) // n_groups}%" for g in range(n_groups)]


@section("ffn_concepts", "W3 · Feed-forward concepts")
def ffn_concepts(ctx: Context) -> list[str]:
    components = ctx.tables("components")
    variance = {}
    for key, t in components.items():
        top = t[t["component"] < 10].groupby("layer")["explained_variance"].sum()
        variance[key] = {"x": _relative_depth(top.index, ctx.n_layers(key)), "y": top.to_numpy()}
    parts = [plot(
        figures.line_panels([("variance of the top 10 components", variance)], ctx.colors,
                            "explained variance share", ncols=1),
        "Per layer, the share of the MLP down-projection's variance explained by its 10 "
        "largest principal components (x = layer / (layers − 1)). Higher = the layer's "
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


@section("next_token_predictions", "Next-token predictions")
def next_token_predictions(ctx: Context) -> list[str]:
    preds = ctx.tables("predictions")
    prompts = list(dict.fromkeys(p for t in preds.values() for p in t["prompt"]))
    probs, tops = {}, []
    for key, t in preds.items():
        best = t[t["rank"] == 1].drop_duplicates("prompt").set_index("prompt")
        probs[key] = [float(best["probability"].get(p, np.nan)) for p in prompts]
        tops.append(best.reset_index()[["prompt", "token", "probability"]].assign(model=key))
    parts = [plot(
        figures.grouped_bars([("top-1 probability", prompts, probs)], ctx.colors,
                             "probability", ylim=(0, 1.02), ncols=1),
        "Probability of each model's most likely next token after each prompt (x axis), one "
        "bar per model: a quick look at how sure the models are. The tokens are in the "
        "table below.")]
    if tops:
        parts.append(details("Top-1 token per prompt and model",
                             table(pd.concat(tops, ignore_index=True),
                                   ["prompt", "model", "token", "probability"]), open_=True))
    return parts
