"""The quick next-token look: each model's top tokens after a few factual prompts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tunescope.report import figures
from tunescope.report.markup import details, table
from tunescope.report.sections.base import Context, plot, section


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
