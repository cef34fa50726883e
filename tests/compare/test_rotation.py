"""Rotation statistics (W3): label shares per depth group, bootstrap CIs, base-vs-tuned tests."""

import numpy as np
import pandas as pd
import pytest
from tiny import tiny_lm

from tunescope.analyses.ffn_concepts import FFNConceptsConfig, ffn_concepts
from tunescope.compare.rotation import (
    label_shares,
    permutation_test,
    rotation,
    rotation_from_results,
)
from tunescope.errors import TunescopeError


def make_labels(n_layers, n_components, runs, category, level="semantics"):
    """A labels table; ``category(layer, component, run)`` (or a constant) gives each label."""
    rows = []
    for layer in range(n_layers):
        for c in range(n_components):
            for run in range(runs):
                cat = category(layer, c, run) if callable(category) else category
                lev = level(layer, c, run) if callable(level) else level
                rows.append({"layer": layer, "component": c, "run": run, "category": cat,
                             "level": lev, "description": ""})
    return pd.DataFrame(rows)


CYCLE = ["writing", "math", "coding", "translation", "none"]


def mixed(layer, c, run):
    return CYCLE[(layer + c + (run if c % 3 == 0 else 0)) % 5]


def test_shares_sum_to_one_and_ci_contains_estimate():
    labels = make_labels(8, 12, 3, mixed, level=lambda layer, c, r: ["syntax", "semantics",
                                                                 "unparsed"][c % 3])
    for field in ("category", "level"):
        shares = label_shares(labels, field, n_layers=8, n_boot=300, seed=1)
        assert set(shares["group"]) == {0, 1, 2, 3}
        sums = shares.groupby("group")["share"].sum()
        np.testing.assert_allclose(sums.to_numpy(), 1.0)
        assert (shares["ci_low"] <= shares["share"] + 1e-12).all()
        assert (shares["share"] <= shares["ci_high"] + 1e-12).all()
        assert (shares["n_components"] == 2 * 12).all() and (shares["n_labels"] == 72).all()
    levels = label_shares(labels, "level", n_layers=8, n_boot=50)
    assert "unparsed" in set(levels["value"]) and "morphology" in set(levels["value"])
    assert levels[levels["value"] == "unparsed"]["share"].iloc[0] == pytest.approx(4 / 12)


def test_known_shares_and_degenerate_ci():
    labels = make_labels(4, 10, 2, lambda layer, c, r: "math" if layer == 0 or c < 5 else "coding")
    shares = label_shares(labels, "category", n_groups=2, n_boot=200)   # depth from the table
    g0 = shares[shares["group"] == 0].set_index("value")
    assert g0.loc["math", "share"] == pytest.approx(0.75)
    g1 = shares[shares["group"] == 1].set_index("value")
    assert g1.loc["math", "share"] == pytest.approx(0.5) and g1.loc["writing", "share"] == 0
    assert g1.loc["writing", "ci_low"] == g1.loc["writing", "ci_high"] == 0
    assert g1.loc["math", "ci_low"] < 0.5 < g1.loc["math", "ci_high"]


def test_rotation_detects_a_shift_across_depths():
    base = make_labels(8, 10, 3, "writing")
    tuned = make_labels(4, 20, 3, lambda layer, c, r: "math" if layer < 2 else "writing")
    out = rotation(base, tuned, 8, 4, n_boot=200, n_permutations=200, seed=3)
    shares = out["shares"]
    assert set(shares["model"]) == {"base", "tuned"} and set(shares["field"]) == {"category",
                                                                                 "level"}
    np.testing.assert_allclose(shares.groupby(["model", "field", "group"])["share"].sum(), 1.0)
    diff = out["differences"]
    math0 = diff[(diff["field"] == "category") & (diff["group"] == 0) & (diff["value"] == "math")]
    assert math0["difference"].iloc[0] == pytest.approx(1.0)
    assert (diff["ci_low"] <= diff["difference"] + 1e-12).all()
    assert (diff["difference"] <= diff["ci_high"] + 1e-12).all()
    tests = out["tests"]
    cat = tests[tests["field"] == "category"]
    perm = cat[cat["method"] == "permutation"].set_index("group")
    assert perm.loc[0, "p_value"] < 0.01 and perm.loc[0, "statistic"] == pytest.approx(1.0)
    assert perm.loc[3, "p_value"] == 1.0 and perm.loc[3, "statistic"] == 0
    chi = cat[cat["method"] == "chi2"]
    assert sorted(chi[chi["group"] == 0]["run"]) == [0, 1, 2]
    assert (chi[chi["group"] <= 1]["p_value"] < 1e-6).all()
    assert (chi[chi["group"] >= 2]["p_value"] == 1.0).all()
    assert chi["n_base"].iloc[0] == 20 and chi["n_tuned"].iloc[0] == 20
    assert tests[tests["method"] == "permutation"]["run"].isna().all()
    again = rotation(base, tuned, 8, 4, n_boot=200, n_permutations=200, seed=3)
    for name in out:
        pd.testing.assert_frame_equal(out[name], again[name])


def test_permutation_test_null_is_not_significant():
    rng = np.random.default_rng(0)
    base = rng.multinomial(3, [0.3, 0.3, 0.4], size=40).astype(float)
    tuned = rng.multinomial(3, [0.3, 0.3, 0.4], size=40).astype(float)
    stat, p = permutation_test(base, tuned, 500, np.random.default_rng(1))
    assert 0 <= stat < 0.2 and p > 0.05
    stat, p = permutation_test(base, base.copy(), 100, np.random.default_rng(1))
    assert stat == 0 and p == 1.0


def test_rotation_from_ffn_concepts_results():
    words = ["number", "sum", "code", "python", "poem", "story", "French", "translate", "the",
             "of", "walking", "talking", "sky", "blue", "Paris", "Rome"]
    config = FFNConceptsConfig(rank=4, top_words=6, runs=2)
    base = ffn_concepts(tiny_lm("llama"), words, config)
    tuned = ffn_concepts(tiny_lm("gemma3"), words, config)
    out = rotation_from_results(base, tuned, n_groups=2, n_boot=50, n_permutations=50)
    shares = out["shares"]
    assert set(shares["group"]) == {0, 1}
    counts = shares.groupby(["model", "field", "group"])["n_components"].first()
    # 3 llama layers: groups {0, 1} and {2}; 4 gemma3 layers: {0, 1} and {2, 3}
    assert counts[("base", "category", 0)] == 8 and counts[("base", "category", 1)] == 4
    assert counts[("tuned", "category", 0)] == 8 and counts[("tuned", "category", 1)] == 8
    unlabelled = ffn_concepts(tiny_lm("llama"), words, FFNConceptsConfig(rank=2, labeller="none"))
    with pytest.raises(TunescopeError, match="labels"):
        rotation_from_results(unlabelled, tuned)


def test_missing_columns():
    with pytest.raises(TunescopeError, match="category"):
        label_shares(pd.DataFrame({"layer": [0], "component": [0], "run": [0]}))
