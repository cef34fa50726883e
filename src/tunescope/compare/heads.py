"""attention_heads (W2): do instruction verbs gain more than general verbs?
(:func:`tunescope.analyses.heads_compare.compare_heads`).

Per verb and depth group (``n_groups`` groups of layers by relative depth), compare_heads gives
the share of changed units (layer, head, dimension) in which the verb takes part in more pairs
after tuning; units are joined when both models have the same shape, else compared unpaired.
One row per depth group, metric ``share_more_after_tuning``: since each share already compares
the two models, the row contrasts the two verb classes instead, in the columns' order
*reference, then test*: ``base`` = the mean share of the general verbs, ``tuned`` = that of the
instruction verbs, ``difference`` = instruction - general, with the study's one-sided Welch test
instruction > general, a bootstrap interval resampling each class's verbs independently, and
``n_base`` / ``n_tuned`` the numbers of general / instruction verbs. ``depth`` is the group's
centre, ``(group + 0.5) / n_groups``.

Verbs that occur in neither model's pairs add no row to compare_heads' tables (no changed
unit, no unpaired comparison), so only the verbs found in the pairs are passed to it: the same
tables, without a pass over the thousands of absent verbs.

The model shapes (n_layers, n_heads, d_head) come from the Results' provenance. A Result whose
model metadata lacks ``d_head`` gets ``d_model // n_heads`` (raised to the largest dimension
index seen in its pairs + 1), and the note says so.
"""

from __future__ import annotations

import numpy as np

from tunescope.analyses.heads_compare import compare_heads
from tunescope.data.verbs import INSTRUCTION_VERBS, general_verbs
from tunescope.compare.bootstrap import mean_parts, percentile_ci, ratio
from tunescope.compare.registry import comparer
from tunescope.compare.table import key, need, row

N_GROUPS = 4
"""Depth groups of layers (as in compare_heads)."""


def head_shape(result) -> tuple[dict, bool]:
    """({"n_layers", "n_heads", "d_head"}, whether d_head was estimated) of a Result's model."""
    model = result.provenance.get("model", {})
    shape = {"n_layers": int(model["n_layers"]), "n_heads": int(model["n_heads"])}
    if model.get("d_head"):
        return {**shape, "d_head": int(model["d_head"])}, False
    pairs = need(result, "pairs")
    seen = int(pairs["dim"].max()) + 1 if len(pairs) else 1
    return {**shape, "d_head": max(int(model["d_model"]) // shape["n_heads"], seen)}, True


@comparer("attention_heads")
def compare_attention_heads(base, tuned, resampler) -> list[dict]:
    (shape_b, guessed_b), (shape_t, guessed_t) = head_shape(base), head_shape(tuned)
    pairs = {"base": need(base, "pairs"), "tuned": need(tuned, "pairs")}
    seen = set().union(*(set(p[side].unique()) for p in pairs.values()
                         for side in ("word_q", "word_k")))
    shares, tests, method = compare_heads(
        pairs["base"], pairs["tuned"], shape_b, shape_t,
        [v for v in INSTRUCTION_VERBS if v in seen], [v for v in general_verbs() if v in seen],
        n_groups=N_GROUPS)
    note = (f"verb shares of changed units with more pairs after tuning (units {method}); "
            "base column: general verbs, tuned column: instruction verbs")
    if guessed_b or guessed_t:
        note += "; d_head not recorded in the provenance: estimated"
    rows = []
    for t in tests.itertuples():
        sub = shares[shares["group"] == t.group]
        classes = [sub[sub["verb_class"] == c]["share_more_after_tuning"].dropna().to_numpy()
                   for c in ("general", "instruction")]
        general, instruction = (ratio(resampler.weights(len(v)), *mean_parts(v[:, None]))
                                for v in classes)
        low, high = percentile_ci(instruction - general)
        ok = min(t.general_n, t.instruction_n) >= 2
        rows.append(row("share_more_after_tuning", key(group=int(t.group)),
                        depth=(t.group + 0.5) / N_GROUPS, base=t.general_mean,
                        tuned=t.instruction_mean, ci_low=low[0] if ok else np.nan,
                        ci_high=high[0] if ok else np.nan,
                        test="welch_one_sided_greater" if np.isfinite(t.p_instruction_greater)
                        else "", statistic=t.t, p_value=t.p_instruction_greater,
                        n_base=t.general_n, n_tuned=t.instruction_n, note=note))
    return rows
