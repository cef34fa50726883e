"""attention_heads (W2): do instruction verbs gain more than general verbs?
(:func:`tunescope.compare.verb_share.compare_heads`).

Per verb and depth group (``n_groups`` groups of layers by relative depth), compare_heads gives
the share of changed heads (unit: the head, matched by layer and index) in which the verb takes
part in more of the head's *knowledge* pairs (unordered, lower-cased pairs found in more than
one of its dimensions) after tuning; heads are matched when both models have the same numbers
of layers and heads, else compared unpaired. One row per depth group, metric
``share_more_after_tuning``: since each share already compares the two models, the row
contrasts the two verb classes instead, in the columns' order *reference, then test*: ``base``
= the mean share of the general verbs, ``tuned`` = that of the instruction verbs,
``difference`` = instruction - general, with the study's one-sided Welch test instruction >
general, a bootstrap interval resampling each class's verbs independently, and ``n_base`` /
``n_tuned`` the numbers of general / instruction verbs. ``depth`` is the group's centre,
``(group + 0.5) / n_groups``.

Verbs that occur in neither model's knowledge pairs add no row to compare_heads' tables (no
changed head, no unpaired comparison), so only the verbs found there are passed to it: the
same tables, without a pass over the thousands of absent verbs.

The knowledge comes from each Result's ``knowledge`` table; a Result saved before the knowledge
was counted as unordered lower-cased pairs (no ``word_a`` column) has it recounted from its
``pairs`` table. The model shapes (n_layers, n_heads) come from the Results' provenance.
"""

from __future__ import annotations

import numpy as np

from tunescope.analyses.attention_heads import knowledge_pairs
from tunescope.compare.depth import N_GROUPS
from tunescope.compare.registry import comparer
from tunescope.compare.table import key, need, row
from tunescope.compare.verb_share import compare_heads
from tunescope.data.verbs import INSTRUCTION_VERBS, general_verbs
from tunescope.stats.bootstrap import mean_parts, percentile_ci, ratio


def head_shape(result) -> dict:
    """{"n_layers", "n_heads"} of a Result's model."""
    model = result.provenance.get("model", {})
    return {"n_layers": int(model["n_layers"]), "n_heads": int(model["n_heads"])}


def head_knowledge(result):
    """A Result's knowledge table (layer, head, word_a, word_b, ...), recounted from its
    ``pairs`` table when the Result lacks one in that form."""
    knowledge = result.tables.get("knowledge")
    if knowledge is not None and "word_a" in knowledge.columns:
        return knowledge
    return knowledge_pairs(need(result, "pairs"))


@comparer("attention_heads")
def compare_attention_heads(base, tuned, resampler) -> list[dict]:
    shape_b, shape_t = head_shape(base), head_shape(tuned)
    knowledge = {"base": head_knowledge(base), "tuned": head_knowledge(tuned)}
    seen = set().union(*(set(k[side].unique()) for k in knowledge.values()
                         for side in ("word_a", "word_b")))
    shares, tests, method = compare_heads(
        knowledge["base"], knowledge["tuned"], shape_b, shape_t,
        [v for v in INSTRUCTION_VERBS if v in seen], [v for v in general_verbs() if v in seen],
        n_groups=N_GROUPS)
    note = (f"verb shares of changed heads with more knowledge pairs after tuning (heads "
            f"{method}); base column: general verbs, tuned column: instruction verbs")
    sims = [res.summary.get("similarity") for res in (base, tuned)]
    if sims[0] != sims[1]:
        note += (f"; different word similarities: base {sims[0]!r} vs tuned {sims[1]!r} (the "
                 "two models' pairs were filtered differently)")
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
