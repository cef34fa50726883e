"""attribution (W1): the instruction score per prompt source (and over all prompts), tuned -
base, with the study's one-sided Welch t-test base < tuned
(:func:`compare_instruction_scores`).

The interval is a bootstrap of the difference of mean scores that resamples each model's
prompts independently, the same independence the Welch test assumes (unpaired, even though the
prompts are usually the same). Key ``source=<name>`` per source, ``""`` for all prompts.
An empty response scores 0.0 (the study's rule) and counts like any score; the note says how many
there were.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tunescope.compare.registry import comparer
from tunescope.compare.table import key, need, row
from tunescope.stats.bootstrap import mean_parts, percentile_ci, ratio
from tunescope.stats.welch import welch_one_sided


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


def compare_instruction_scores(base: pd.DataFrame, tuned: pd.DataFrame) -> pd.DataFrame:
    """Per prompt source (and ``"all"``): mean/std/n of the instruction score of a base and a
    tuned model (``per_prompt`` tables) and the one-sided Welch t-test base < tuned."""
    rows = []
    sources = sorted(set(base["source"]) | set(tuned["source"]))
    for source in [*sources, "all"]:
        a = base if source == "all" else base[base["source"] == source]
        b = tuned if source == "all" else tuned[tuned["source"] == source]
        x, y = a["instruction_score"].dropna(), b["instruction_score"].dropna()
        t, p = welch_one_sided(x, y, alternative="less")
        rows.append({"source": source, "base_mean": x.mean(), "base_std": x.std(), "base_n": len(x),
                     "tuned_mean": y.mean(), "tuned_std": y.std(), "tuned_n": len(y),
                     "t": t, "p_base_less": p})
    return pd.DataFrame(rows)


def followed_vs_unfollowed(per_prompt: pd.DataFrame, followed: dict[str, bool]) -> pd.DataFrame:
    """Within one model: instruction scores of responses rated as following the instruction
    against those that did not (``followed``: prompt id -> bool), per source and ``"all"``,
    with the one-sided Welch t-test followed > unfollowed."""
    rated = per_prompt[per_prompt["id"].isin(followed)].assign(
        followed=lambda d: d["id"].map(followed))
    rows = []
    for source in [*sorted(set(rated["source"])), "all"]:
        sub = rated if source == "all" else rated[rated["source"] == source]
        f = sub.loc[sub["followed"], "instruction_score"].dropna()
        u = sub.loc[~sub["followed"], "instruction_score"].dropna()
        t, p = welch_one_sided(f, u, alternative="greater")
        rows.append({"source": source, "followed_mean": f.mean(), "followed_n": len(f),
                     "unfollowed_mean": u.mean(), "unfollowed_n": len(u), "t": t,
                     "p_followed_greater": p})
    return pd.DataFrame(rows)
