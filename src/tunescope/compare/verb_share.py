"""Base against tuned for W2 (docs/methods.md#w2, after Wu et al. 2024): in which heads does a word
take part in more knowledge pairs after tuning, and is that more often so for instruction verbs
than for general verbs?

The unit is the attention head, (layer, head). A word's count in a head is the number of the
head's *knowledge* pairs (unordered, lower-cased pairs found in more than one of its dimensions,
:func:`tunescope.analyses.attention_heads.knowledge_pairs`) that contain the word (a pair of a
word with itself counts twice). Pairs kept in only one dimension do not count. Layers are put in
``n_groups`` groups by relative depth, so models of different depth can be compared.

- Same architecture (equal layers and heads): heads are matched by layer and head index; a head
  *changed* for a word when its count differs; the word's share in a group is the fraction of
  its changed heads where the tuned count is higher. Words with no changed head in a group get
  no share there.
- Different architectures: heads cannot be matched; the share is P(tuned > base) /
  P(tuned != base) for a random tuned head against a random base head of the same depth group
  (the unpaired analogue), and the result says so.

Per group, the instruction verbs' shares are contrasted with the general verbs' (Welch test).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from tunescope.compare.depth import depth_group
from tunescope.data import verbs as lexicon
from tunescope.stats.welch import welch_one_sided


def word_counts(knowledge: pd.DataFrame, words: set[str]) -> pd.DataFrame:
    """Counts [word, layer, head, count]: per head, the number of its knowledge pairs (a
    ``knowledge`` table with columns layer, head, word_a, word_b) that contain each word of
    ``words`` (lower-cased words)."""
    sides = [knowledge.loc[knowledge[side].isin(words), ["layer", "head", side]]
             .rename(columns={side: "word"}) for side in ("word_a", "word_b")]
    long = pd.concat(sides)
    return long.groupby(["word", "layer", "head"]).size().rename("count").reset_index()


def _unpaired_share(base_hits: np.ndarray, tuned_hits: np.ndarray, base_units: int,
                    tuned_units: int) -> tuple[float, int]:
    """P(X > Y) / P(X != Y) for X the word's count in a random tuned unit and Y in a random
    base unit of a group, with the number of unit pairs that differ. ``*_hits``: the counts
    (>= 1) of the units where the word appears; the other ``*_units`` count 0. Counted
    exactly from sorted hits, without spelling out the zeros."""
    ys = np.sort(base_hits)
    below = np.searchsorted(ys, tuned_hits, side="left")                # base units under x
    above = len(ys) - np.searchsorted(ys, tuned_hits, side="right")     # base units over x
    greater = int(below.sum()) + len(tuned_hits) * (base_units - len(ys))
    less = int(above.sum()) + (tuned_units - len(tuned_hits)) * len(ys)
    return (greater / (greater + less) if greater + less else np.nan), greater + less


def compare_heads(base_knowledge: pd.DataFrame, tuned_knowledge: pd.DataFrame, base_shape: dict,
                  tuned_shape: dict, instruction_verbs: Sequence[str] | None = None,
                  general_verbs: Sequence[str] | None = None, n_groups: int = 4
                  ) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Per word and depth group, the share of changed heads where the word appears in more
    knowledge pairs after tuning; then per group instruction verbs against general verbs
    (mean, std, n, one-sided Welch test instruction > general).

    ``*_knowledge``: the Results' ``knowledge`` tables (layer, head, word_a, word_b).
    ``*_shape``: ``{"n_layers", "n_heads"}`` of each model (e.g. from the Result's provenance).
    Verbs (lower-cased) default to the study's 38 instruction verbs and the 3,000 most frequent
    general verbs (:mod:`tunescope.data.verbs`). Returns (shares table [word, group,
    n_changed (changed heads, or differing head pairs when unpaired), share_more_after_tuning,
    verb_class], tests table, method: "joined" or "unpaired").
    """

    instruction_verbs = lexicon.INSTRUCTION_VERBS if instruction_verbs is None else instruction_verbs
    general_verbs = lexicon.general_verbs() if general_verbs is None else general_verbs
    verbs = {w.lower(): "general" for w in general_verbs}
    verbs.update({w.lower(): "instruction" for w in instruction_verbs})
    same = all(base_shape[k] == tuned_shape[k] for k in ("n_layers", "n_heads"))
    counts = {name: word_counts(df, set(verbs)).assign(
                  group=lambda d, s=shape: depth_group(d["layer"], s["n_layers"], n_groups))
              for name, df, shape in (("base", base_knowledge, base_shape),
                                      ("tuned", tuned_knowledge, tuned_shape))}
    rows = []
    if same:
        joined = counts["base"].merge(counts["tuned"], on=["word", "layer", "head", "group"],
                                      how="outer", suffixes=("_base", "_tuned")).fillna(0)
        changed = joined[joined["count_base"] != joined["count_tuned"]]
        for (word, group), sub in changed.groupby(["word", "group"]):
            rows.append({"word": word, "group": int(group), "n_changed": len(sub),
                         "share_more_after_tuning": float((sub["count_tuned"] > sub["count_base"]).mean())})
    else:
        # each model's counts of one (word, group), read from one groupby per model
        found = {name: {k: g.to_numpy() for k, g in c.groupby(["word", "group"])["count"]}
                 for name, c in counts.items()}
        empty = np.zeros(0, dtype=np.int64)
        for group in range(n_groups):
            units = {}
            for name, shape in (("base", base_shape), ("tuned", tuned_shape)):
                layers = np.arange(shape["n_layers"])
                units[name] = int((depth_group(layers, shape["n_layers"], n_groups) == group).sum()
                                  * shape["n_heads"])
            for word in verbs:
                share, n = _unpaired_share(found["base"].get((word, group), empty),
                                           found["tuned"].get((word, group), empty),
                                           units["base"], units["tuned"])
                if n:
                    rows.append({"word": word, "group": group, "n_changed": n,
                                 "share_more_after_tuning": share})
    shares = pd.DataFrame(rows, columns=["word", "group", "n_changed", "share_more_after_tuning"])
    shares["verb_class"] = shares["word"].map(verbs)
    tests = []
    for group in range(n_groups):
        sub = shares[shares["group"] == group]
        a = sub[sub["verb_class"] == "instruction"]["share_more_after_tuning"].dropna()
        b = sub[sub["verb_class"] == "general"]["share_more_after_tuning"].dropna()
        t, p = welch_one_sided(a, b, alternative="greater")
        tests.append({"group": group, "instruction_mean": a.mean(), "instruction_std": a.std(),
                      "instruction_n": len(a), "general_mean": b.mean(), "general_std": b.std(),
                      "general_n": len(b), "t": t, "p_instruction_greater": p})
    return shares, pd.DataFrame(tests), "joined" if same else "unpaired"
