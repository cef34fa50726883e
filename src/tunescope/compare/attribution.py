"""attribution (W1): the instruction score per prompt source (and over all prompts), tuned -
base, with the study's one-sided Welch t-test base < tuned
(:func:`tunescope.analyses.attribution.compare_instruction_scores`).

The interval is a bootstrap of the difference of mean scores that resamples each model's
prompts independently, the same independence the Welch test assumes (unpaired, even though the
prompts are usually the same). Key ``source=<name>`` per source, ``""`` for all prompts.
"""

from __future__ import annotations

import numpy as np

from tunescope.analyses.attribution import compare_instruction_scores
from tunescope.compare.bootstrap import mean_parts, percentile_ci, ratio
from tunescope.compare.registry import comparer
from tunescope.compare.table import key, need, row


def _scores(per_prompt, source: str) -> np.ndarray:
    sub = per_prompt if source == "all" else per_prompt[per_prompt["source"] == source]
    values = sub["instruction_score"].to_numpy(np.float64)
    return values[~np.isnan(values)]


@comparer("attribution")
def compare_attribution(base, tuned, resampler) -> list[dict]:
    per_prompt = {"base": need(base, "per_prompt"), "tuned": need(tuned, "per_prompt")}
    tests = compare_instruction_scores(per_prompt["base"], per_prompt["tuned"])
    rows = []
    for t in tests.itertuples():
        replicates = {}
        for side, table in per_prompt.items():
            scores = _scores(table, t.source)
            replicates[side] = ratio(resampler.weights(len(scores)), *mean_parts(scores[:, None]))
        diff = replicates["tuned"] - replicates["base"]
        low, high = percentile_ci(diff)
        ok = min(t.base_n, t.tuned_n) >= 2
        rows.append(row("instruction_score", "" if t.source == "all" else key(source=t.source),
                        base=t.base_mean, tuned=t.tuned_mean,
                        ci_low=low[0] if ok else np.nan, ci_high=high[0] if ok else np.nan,
                        test="welch_one_sided_less" if np.isfinite(t.p_base_less) else "",
                        statistic=t.t, p_value=t.p_base_less, n_base=t.base_n,
                        n_tuned=t.tuned_n, note="" if t.base_n and t.tuned_n else
                        "no scored prompt of this source in one model"))
    return rows
