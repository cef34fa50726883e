"""The W1 section (docs/methods.md#w1, Wu et al. 2024): instruction scores by source, the
format each model saw, and token heatmaps of example prompts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tunescope.report import figures
from tunescope.report.heatmap import token_heatmap
from tunescope.report.markup import esc, fmt, note
from tunescope.report.sections.base import Context, model_tables, plot, section

N_EXAMPLES = 3
"""How many example prompts get token heatmaps."""
RESPONSE_CHARS = 500
"""Longest response text shown under a heatmap (characters)."""


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
