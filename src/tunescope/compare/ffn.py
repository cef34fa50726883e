"""ffn_concepts (W3): the "rotation" of feed-forward concepts, as shares of task categories
and linguistic levels per depth group, tuned - base
(:func:`tunescope.analyses.rotation.rotation_from_results`).

Rows ``category_share`` / ``level_share`` (key ``group=<g>,category=<value>``): the share of
labels with that value in the group, with rotation's bootstrap interval (each model's components
resampled independently). Rows ``category_distribution`` / ``level_distribution`` (key
``group=<g>``): rotation's permutation test of the whole distribution, ``statistic`` the total
variation distance between base and tuned shares. ``depth`` is the group's centre,
``(group + 0.5) / n_groups``; ``n_base`` / ``n_tuned`` count components.

Results without a ``labels`` table (labeller ``"none"``) compare only the mean share of variance
in each layer's top-10 components (from the summaries; no interval). Principal angles between
the component subspaces need the models' weights, not Results:
:func:`tunescope.analyses.ffn_concepts.layer_principal_angles`.
"""

from __future__ import annotations

import numpy as np

from tunescope.analyses.rotation import rotation_from_results
from tunescope.compare.registry import comparer
from tunescope.compare.table import key, row

N_GROUPS = 4
"""Depth groups of layers (as in rotation)."""


def _components(shares, model: str, field: str, group: int) -> int:
    sub = shares[(shares["model"] == model) & (shares["field"] == field)
                 & (shares["group"] == group)]
    return int(sub["n_components"].iloc[0]) if len(sub) else 0


@comparer("ffn_concepts")
def compare_ffn_concepts(base, tuned, resampler) -> list[dict]:
    if "labels" not in base.tables or "labels" not in tuned.tables:
        summaries = base.summary, tuned.summary
        return [row("mean_top10_variance",
                    base=summaries[0].get("mean_top10_variance", np.nan),
                    tuned=summaries[1].get("mean_top10_variance", np.nan),
                    n_base=summaries[0].get("n_layers", 0), n_tuned=summaries[1].get("n_layers", 0),
                    note="no labels table (labeller 'none'): concept shares not compared")]
    out = rotation_from_results(base, tuned, n_groups=N_GROUPS, n_boot=resampler.n_boot,
                                n_permutations=resampler.n_boot,
                                seed=int(resampler.rng.integers(2**32)))
    shares, rows = out["shares"], []
    for d in out["differences"].itertuples():
        n_b = _components(shares, "base", d.field, d.group)
        n_t = _components(shares, "tuned", d.field, d.group)
        ok = min(n_b, n_t) >= 2
        rows.append(row(f"{d.field}_share", key(group=int(d.group), **{d.field: d.value}),
                        depth=(d.group + 0.5) / N_GROUPS, base=d.base_share, tuned=d.tuned_share,
                        ci_low=d.ci_low if ok else np.nan, ci_high=d.ci_high if ok else np.nan,
                        n_base=n_b, n_tuned=n_t))
    tests = out["tests"]
    for t in tests[tests["method"] == "permutation"].itertuples():
        rows.append(row(f"{t.field}_distribution", key(group=int(t.group)),
                        depth=(t.group + 0.5) / N_GROUPS,
                        test="permutation_tvd", statistic=t.statistic, p_value=t.p_value,
                        n_base=t.n_base, n_tuned=t.n_tuned,
                        note="statistic: total variation distance between the shares"))
    return rows
