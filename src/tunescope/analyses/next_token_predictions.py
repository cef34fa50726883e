"""next_token_predictions: the model's most probable next tokens after each prompt."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from tunescope.analyses.registry import register
from tunescope.analyses.skeleton import AnalysisRun
from tunescope.data.prompts import FACTUAL_PROMPTS
from tunescope.engine.forward import next_token_logprobs
from tunescope.models.lm import LM
from tunescope.result import Result, fingerprint


@dataclass(frozen=True)
class PredictionsConfig:
    """``k``: how many top tokens to keep per prompt; ``chat``: wrap prompts in the chat template."""

    k: int = 5
    chat: bool = False


@register("next_token_predictions", PredictionsConfig, dataset="prompts")
def next_token_predictions(lm: LM, prompts: Sequence[str] = FACTUAL_PROMPTS,
                           config: PredictionsConfig = PredictionsConfig()) -> Result:
    """Top-k next-token predictions (token, probability) after each prompt."""
    run = AnalysisRun("next_token_predictions", lm, config)
    texts = [lm.format_prompt(p, chat=config.chat) for p in prompts]
    top = next_token_logprobs(lm, texts, desc=f"{lm.name}: predictions").topk(config.k, dim=-1)
    rows = [{"prompt": p, "rank": r + 1, "token": lm.tokenizer.decode([int(t)]),
             "token_id": int(t), "probability": float(lp.exp())}
            for p, ids, lps in zip(prompts, top.indices, top.values)
            for r, (t, lp) in enumerate(zip(ids, lps))]
    table = pd.DataFrame(rows)
    best = table[table["rank"] == 1]
    return run.result({"predictions": table},
                      {"n_prompts": len(prompts),
                       "mean_top1_probability": float(best["probability"].mean())},
                      {"kind": "prompts", "size": len(prompts),
                       "fingerprint": fingerprint(list(prompts))})
