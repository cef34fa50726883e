"""attribution (W1): the instruction score per prompt source (and over all prompts), tuned -
base, with the study's one-sided Welch t-test base < tuned
(:func:`tunescope.analyses.attribution.compare_instruction_scores`).

The interval is a bootstrap of the difference of mean scores that resamples each model's
prompts independently, the same independence the Welch test assumes (unpaired, even though the
prompts are usually the same). Key ``source=<name>`` per source, ``""`` for all prompts.
An empty response scores 0.0 (the study's rule) and counts like any score; the note says how many
there were.
"""

from __future__ import annotations

import numpy as np

from tunescope.analyses.attribution import compare_instruction_scores
from tunescope.compare.bootstrap import mean_parts, percentile_ci, ratio
from tunescope.compare.registry import comparer
from tunescope.compare.table import key, need, row


def _rows(per_prompt, source: str):
    return per_prompt if source == "all" else per_prompt[per_prompt["source"] == source]


def _scores(per_prompt, source: str) -> np.ndarray:
    values = _rows(per_prompt, source)["instruction_score"].to_numpy(np.float64)
    return values[~np.isnan(values)]


def _n_empty(per_prompt, source: str) -> int:
    """Scored empty responses among the prompts of ``source`` (0 for tables that do not say;
    results of older versions left empty responses unscored, NaN, and they do not count)."""
    sub = _rows(per_prompt, source)
    scored = sub["instruction_score"].notna()
    if "empty_response" in sub:
        return int((sub["empty_response"].astype(bool) & scored).sum())
    if "n_response_tokens" in sub:
        return int(((sub["n_response_tokens"] == 0) & scored).sum())
    return 0


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
        empty = {side: _n_empty(table, t.source) for side, table in per_prompt.items()}
        notes = [] if t.base_n and t.tuned_n else ["no scored prompt of this source in one model"]
        if any(empty.values()):
            notes.append(f"empty responses scored 0: base {empty['base']}/{t.base_n}, "
                         f"tuned {empty['tuned']}/{t.tuned_n}")
        rows.append(row("instruction_score", "" if t.source == "all" else key(source=t.source),
                        base=t.base_mean, tuned=t.tuned_mean,
                        ci_low=low[0] if ok else np.nan, ci_high=high[0] if ok else np.nan,
                        test="welch_one_sided_less" if np.isfinite(t.p_base_less) else "",
                        statistic=t.t, p_value=t.p_base_less, n_base=t.base_n,
                        n_tuned=t.tuned_n, note="; ".join(notes)))
    return rows
