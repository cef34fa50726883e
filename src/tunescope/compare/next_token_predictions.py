"""next_token_predictions: the probability of each model's own top-1 next token after each
prompt, tuned - base.

Rows ``top1_probability`` per prompt (key ``prompt=<i>``, i the prompt's position in the base's
table; the note names both top tokens) without interval, and ``mean_top1_probability`` (key
``""``) over the prompts both models saw, with a paired bootstrap over prompts. The tokens
themselves are not compared by id: the models may have different tokenizers.
"""

from __future__ import annotations

import numpy as np

from tunescope.compare.registry import comparer
from tunescope.compare.table import bootstrap_rows, key, need, row
from tunescope.stats.bootstrap import mean_parts, observed, ratio


def top1(result) -> dict[str, tuple[str, float]]:
    """Prompt -> (top-1 token, its probability), in the table's order."""
    table = need(result, "predictions")
    best = table[table["rank"] == 1]
    return {p: (tok, float(prob))
            for p, tok, prob in zip(best["prompt"], best["token"], best["probability"])}


@comparer("next_token_predictions")
def compare_next_token_predictions(base, tuned, resampler) -> list[dict]:
    b, t = top1(base), top1(tuned)
    prompts = [p for p in b if p in t]
    rows = [row("top1_probability", key(prompt=i), base=b[p][1], tuned=t[p][1], n_base=1,
                n_tuned=1, note=f"top-1 token: base {b[p][0]!r}, tuned {t[p][0]!r}")
            for i, p in enumerate(b) if p in t]
    if not prompts:
        return rows
    parts = {side: mean_parts(np.array([[probs[p][1]] for p in prompts]))
             for side, probs in (("base", b), ("tuned", t))}
    w = resampler.weights(len(prompts))
    rows += bootstrap_rows("mean_top1_probability", "",
                           observed(*parts["base"]),
                           observed(*parts["tuned"]),
                           ratio(w, *parts["base"]), ratio(w, *parts["tuned"]), paired=True,
                           n_base=len(prompts), n_tuned=len(prompts))
    return rows
