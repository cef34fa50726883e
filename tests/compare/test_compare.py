"""compare: base-vs-tuned tables from hand-built Results (hand-computed numbers, Welch against
scipy, bootstrap intervals and seeds, paired vs unpaired, depth grids) and from Results of tiny
models for every registered analysis."""

import functools

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score
from tiny import CORPUS, fact_relations, tiny_lm, tiny_trained_lm

from tunescope.analyses import REGISTRY, get
from tunescope.analyses.helpers.consistency_metrics import per_relation
from tunescope.compare import COLUMNS, COMPARERS, compare_results, compare_study
from tunescope.compare.depth import to_grid
from tunescope.compare.prediction_consistency import fact_counts
from tunescope.compare.rotation import rotation_from_results
from tunescope.errors import TunescopeError
from tunescope.result import Result


def result(analysis, tables, *, family="llama", n_layers=4, data="d0", summary=None, **model):
    """A hand-built Result whose provenance names the model's family and depth."""
    return Result(analysis, tables, summary or {},
                  {"model": {"name": f"m-{family}", "family": family, "n_layers": n_layers,
                             **model},
                   "config": {}, "dataset": {"fingerprint": data}})


def rows(table, metric=None):
    """The table indexed by key (of one metric)."""
    sub = table if metric is None else table[table["metric"] == metric]
    return sub.set_index("key")


# --- the table and its edge cases ---------------------------------------------------------------

def test_unknown_analysis_gives_empty_frames_with_the_columns():
    a = result("no_such_analysis", {"t": pd.DataFrame({"x": [1]})})
    table = compare_results(a, a)
    assert list(table.columns) == COLUMNS and table.empty
    study = compare_study({"base": a, "tuned": a}, "base")
    assert list(study.columns) == ["model", *COLUMNS] and study.empty
    assert study.attrs["analysis"] == "no_such_analysis"
    # nothing to compare: only the base, or no base
    p = result("attribution", {"per_prompt": pd.DataFrame(
        {"id": ["a", "b"], "source": "s", "instruction_score": [0.1, 0.2]})})
    for results, base in (({"base": p}, "base"), ({"tuned": p}, "base"), ({}, "base")):
        empty = compare_study(results, base)
        assert list(empty.columns) == ["model", *COLUMNS] and empty.empty


def test_bad_input_is_one_clear_error():
    a = result("attribution", {})
    with pytest.raises(TunescopeError, match="'attribution' result with a 'ffn_concepts'"):
        compare_results(a, result("ffn_concepts", {}))
    with pytest.raises(TunescopeError, match="no table 'per_prompt'"):
        compare_results(a, a)
    with pytest.raises(TunescopeError, match="n_boot"):
        compare_results(a, a, n_boot=0)
    with pytest.raises(TunescopeError, match="one analysis"):
        compare_study({"b": a, "t": result("ffn_concepts", {})}, "b")










def test_depth_grid_interpolation():
    source = np.array([0.25, 0.5, 0.75, 1.0])
    values = np.array([[1.0, 2.0, 3.0, 4.0], [0.0, np.nan, 1.0, 1.0]])
    out = to_grid(values, source, np.array([1 / 3, 0.5, 1.0, 0.1]))
    np.testing.assert_allclose(out[0], [1 + 1 / 3, 2.0, 4.0, 1.0])    # linear; clamped below
    assert np.isnan(out[1, 0]) and np.isnan(out[1, 1]) and out[1, 2] == 1.0
    np.testing.assert_array_equal(to_grid(values, source, source)[0], values[0])  # identity


# --- prediction_consistency by hand -------------------------------------------------------------

def _predictions(rows_):
    return pd.DataFrame(rows_, columns=["relation", "subject", "template", "prediction",
                                        "correct"])


BASE_C1 = _predictions([
    ("P1", "A", "t0", "x", True), ("P1", "A", "t1", "x", True), ("P1", "A", "t2", "y", False),
    ("P1", "B", "t0", "z", True), ("P1", "B", "t1", "z", True), ("P1", "C", "t0", "q", False),
    ("P2", "D", "t0", "a", True), ("P2", "D", "t1", "a", True)])
TUNED_C1 = _predictions([
    ("P1", "A", "t0", "x", True), ("P1", "A", "t1", "x", True), ("P1", "A", "t2", "x", True),
    ("P1", "B", "t0", "z", True), ("P1", "B", "t1", "y", False), ("P1", "C", "t0", "w", True),
    ("P2", "D", "t0", "a", True), ("P2", "D", "t1", "b", False)])


def test_prediction_consistency_hand_computed():
    # base P1: accuracy 4/6; consistency (1 + 1) / (3 + 1); A and B judged, B consistent+correct
    # tuned P1: accuracy 5/6; consistency (3 + 0) / 4; A consistent and correct
    base = result("prediction_consistency", {"predictions": BASE_C1})
    tuned = result("prediction_consistency", {"predictions": TUNED_C1})
    table = compare_results(base, tuned, n_boot=500)
    p1 = rows(table[table["key"] == "relation=P1"], None).set_index("metric")
    assert p1.loc["accuracy", ["base", "tuned"]].tolist() == pytest.approx([4 / 6, 5 / 6])
    assert p1.loc["consistency", "difference"] == pytest.approx(0.75 - 0.5)
    assert p1.loc["consistent_subjects", ["base", "tuned"]].tolist() == [0.5, 0.5]
    assert p1.loc["consistent_and_correct", "difference"] == 0
    assert (p1["n_base"] == 3).all() and (p1["test"] == "bootstrap_paired").all()
    assert (p1["ci_low"] <= p1["difference"]).all() and (p1["difference"] <= p1["ci_high"]).all()
    p2 = table[table["key"] == "relation=P2"].set_index("metric")
    assert p2["difference"].tolist() == [-0.5, -1.0, -1.0, -1.0]
    assert p2["ci_low"].isna().all() and (p2["test"] == "").all()      # one subject: no interval
    macro = table[table["key"] == ""].set_index("metric")
    assert macro.loc["macro_accuracy", ["base", "tuned"]].tolist() == pytest.approx(
        [(4 / 6 + 1) / 2, (5 / 6 + 0.5) / 2])
    assert (macro["n_base"] == 2).all() and (macro["test"] == "bootstrap_paired").all()
    # the per-subject counts reproduce the analysis' own metrics
    for preds in (BASE_C1, TUNED_C1):
        own = per_relation(preds).set_index("relation")
        got = table[table["key"].str.startswith("relation=")]
        side = "base" if preds is BASE_C1 else "tuned"
        for rel in ("P1", "P2"):
            sub = got[got["key"] == f"relation={rel}"].set_index("metric")[side]
            for metric in sub.index:
                assert sub[metric] == pytest.approx(own.loc[rel, metric], nan_ok=True)
    assert fact_counts(BASE_C1).set_index("subject").loc["A", "same_pairs"] == 1


def test_unpaired_subjects_and_missing_relations_are_noted():
    tuned = TUNED_C1.replace({"subject": {"C": "E"}})
    tuned = pd.concat([tuned, _predictions([("P9", "Z", "t0", "a", True)])])
    table = compare_results(result("prediction_consistency", {"predictions": BASE_C1}),
                            result("prediction_consistency", {"predictions": tuned}), n_boot=50)
    p1 = table[table["key"] == "relation=P1"]
    assert (p1["test"] == "bootstrap_unpaired").all()
    assert (p1["note"] == "different facts: unpaired").all()
    assert "P9" not in "".join(table["key"])
    assert table[table["key"] == ""]["note"].str.contains("1 relation").all()


def test_facts_that_share_a_subject_are_compared_as_two_facts():
    """Two facts of subject X get the same (identical-prompt) answers A, B: per fact the one
    template pair disagrees (consistency 0); the tuned model answers each fact consistently."""
    def table(answers):
        return pd.DataFrame([{"relation": "R", "fact": f, "subject": "X", "template": t,
                              "prediction": p, "correct": p == gold}
                             for f, gold in ((0, "A"), (1, "B"))
                             for t, p in zip(("t1", "t2"), answers[f])])
    base = result("prediction_consistency", {"predictions": table({0: "AB", 1: "AB"})})
    tuned = result("prediction_consistency", {"predictions": table({0: "AA", 1: "BB"})})
    out = compare_results(base, tuned, n_boot=50)
    r = out[out["key"] == "relation=R"].set_index("metric")
    assert r.loc["consistency", ["base", "tuned"]].tolist() == [0.0, 1.0]
    assert r.loc["consistent_and_correct", "tuned"] == 1.0 and (r["n_base"] == 2).all()
    assert fact_counts(base.tables["predictions"])["template_pairs"].tolist() == [1, 1]


# --- bootstrap intervals, seeds, Welch ----------------------------------------------------------

def _scores(values, source="s"):
    return pd.DataFrame({"id": [f"p{i}" for i in range(len(values))], "source": source,
                         "instruction_score": values})


def test_welch_against_scipy_and_reproducible_intervals():
    b = [0.10, 0.25, 0.20, 0.30, 0.15, 0.22]
    t = [0.40, 0.55, 0.35, 0.60, 0.50, 0.45]
    base = result("attribution", {"per_prompt": _scores(b)})
    tuned = result("attribution", {"per_prompt": _scores(t)})
    table = compare_results(base, tuned, n_boot=400, seed=7)
    ref = stats.ttest_ind(b, t, equal_var=False, alternative="less")
    for key in ("source=s", ""):
        r = rows(table).loc[key]
        assert r["test"] == "welch_one_sided_less"
        assert r["statistic"] == pytest.approx(ref.statistic)
        assert r["p_value"] == pytest.approx(ref.pvalue)
        assert r["difference"] == pytest.approx(np.mean(t) - np.mean(b))
        assert r["ci_low"] < r["difference"] < r["ci_high"] and r["ci_low"] > 0
        assert (r["n_base"], r["n_tuned"]) == (6, 6)
    pd.testing.assert_frame_equal(table, compare_results(base, tuned, n_boot=400, seed=7))
    other = compare_results(base, tuned, n_boot=400, seed=8)
    assert not np.allclose(other["ci_low"], table["ci_low"])
    assert other["difference"].tolist() == table["difference"].tolist()


def test_compare_study_is_compare_results_per_tuned_model():
    base = result("attribution", {"per_prompt": _scores([0.1, 0.2, 0.3])})
    t1 = result("attribution", {"per_prompt": _scores([0.2, 0.4, 0.5])})
    t2 = result("attribution", {"per_prompt": _scores([0.0, 0.1, 0.1])})
    study = compare_study({"t1": t1, "b": base, "t2": t2}, "b", n_boot=100, seed=3)
    assert study["model"].tolist() == ["t1", "t1", "t2", "t2"]
    for model, res in (("t1", t1), ("t2", t2)):
        alone = compare_results(base, res, n_boot=100, seed=3)
        got = study[study["model"] == model].drop(columns="model").reset_index(drop=True)
        pd.testing.assert_frame_equal(got, alone, check_like=False)


# --- representation: paired vs unpaired ---------------------------------------------------------

def _c2_result(cosines, labels, data="d0", n_layers=1, family="llama", normed=False):
    """cosines [n_pairs, layers]; relative depth layer / (layers - 1). With ``normed`` the last
    column is the final-normed layer (n_layers + 1, flagged as the analysis does); without it
    the layers table has only the columns of older Results (no degenerate/band columns)."""
    n, k = cosines.shape
    pairs = pd.DataFrame({"pair": np.repeat(np.arange(n), k), "pooling": "mean",
                          "layer": np.tile(np.arange(k), n), "cosine": cosines.ravel(),
                          "label": np.repeat(labels, k), "source": "x"})
    blocks = k - 1 if normed else k
    depth = np.minimum(np.arange(k), blocks - 1) / (blocks - 1)
    layers = pd.DataFrame({"pooling": "mean", "layer": np.arange(k), "relative_depth": depth})
    if normed:
        layers = layers.assign(source="all", normed=np.arange(k) == k - 1,
                               degenerate=np.ptp(cosines, axis=0) <= 1e-6)
    return result("representation_consistency", {"pairs": pairs, "layers": layers},
                  family=family, n_layers=n_layers, data=data)


def test_representation_paired_shift_has_a_point_interval_unpaired_does_not():
    rng = np.random.default_rng(0)
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    base_cos = rng.uniform(0.2, 0.9, size=(8, 2))
    tuned_cos = base_cos + 0.1 * labels[:, None]           # paraphrases 0.1 closer
    base = _c2_result(base_cos, labels)
    paired = compare_results(base, _c2_result(tuned_cos, labels), n_boot=300)
    gap = rows(paired, "gap")
    assert gap["difference"].tolist() == pytest.approx([0.1, 0.1])
    assert gap["ci_low"].tolist() == pytest.approx([0.1, 0.1])
    assert gap["ci_high"].tolist() == pytest.approx([0.1, 0.1])
    assert (gap["test"] == "bootstrap_paired").all()
    auc = rows(paired, "auc")
    assert auc.loc["pooling=mean,layer=0", "base"] == pytest.approx(
        roc_auc_score(labels, base_cos[:, 0]))
    assert auc.loc["pooling=mean,layer=1", "depth"] == 1.0
    unpaired = compare_results(base, _c2_result(tuned_cos, labels, data="other"), n_boot=300)
    gap_u = rows(unpaired, "gap")
    assert (gap_u["test"] == "bootstrap_unpaired").all()
    assert gap_u["difference"].tolist() == pytest.approx([0.1, 0.1])
    assert (gap_u["ci_high"] - gap_u["ci_low"] > 0.05).all()
    assert gap_u["ci_low"].lt(0.1).all() and gap_u["ci_high"].gt(0.1).all()
    assert unpaired["note"].str.contains("different datasets").all()
    summary = rows(paired, "auc_all_layers").loc["pooling=mean"]
    assert summary["base"] == pytest.approx(np.mean([roc_auc_score(labels, base_cos[:, k])
                                                     for k in (0, 1)]))
    assert np.isnan(summary["depth"]) and "mean over each model's own layers" in summary["note"]
    late = rows(paired, "gap_late").loc["pooling=mean"]            # layer 1 of 1: depth 1
    assert late["difference"] == pytest.approx(0.1) and late["ci_low"] == pytest.approx(0.1)
    assert set(paired["metric"]) == {"gap", "auc"} | {f"{m}_{s}" for m in ("auc", "gap")
                                                      for s in ("all_layers", "early",
                                                                "middle", "late")}


def test_representation_summaries_leave_out_degenerate_layers():
    """A layer whose cosines are all equal is left out of the layer means and named in the
    per-layer and summary notes; the normed layer gets rows of its own, not in the means."""
    rng = np.random.default_rng(1)
    labels = np.array([1, 1, 1, 0, 0, 0])
    cos = rng.uniform(0.0, 1.0, size=(6, 4))
    cos[:, 0] = 1.0                                          # degenerate embedding layer
    base = _c2_result(cos, labels, n_layers=2, normed=True)
    tuned = _c2_result(cos + 0.2 * labels[:, None] * (np.arange(4) > 0), labels, n_layers=2,
                       normed=True)
    table = compare_results(base, tuned, n_boot=200)
    auc = rows(table, "auc")
    assert "degenerate layer in base and tuned" in auc.loc["pooling=mean,layer=0", "note"]
    assert "degenerate" not in auc.loc["pooling=mean,layer=1", "note"]
    assert auc.loc["pooling=mean,layer=normed", "base"] == pytest.approx(
        roc_auc_score(labels, cos[:, 3]))
    assert auc.loc["pooling=mean,layer=normed", "depth"] == 1.0
    summary = rows(table, "auc_all_layers").loc["pooling=mean"]
    assert summary["base"] == pytest.approx(np.mean([roc_auc_score(labels, cos[:, k])
                                                     for k in (1, 2)]))   # not 0, not normed
    assert "degenerate layers left out: base 0 / tuned 0" in summary["note"]
    assert np.isnan(rows(table, "auc_early").loc["pooling=mean", "base"])  # only layer 0


# --- downstream (C3): kappa and constant predictors ---------------------------------------------

def _c3_predictions(predicted: dict[str, list[tuple[str, str]]], gold: list[str]) -> pd.DataFrame:
    """Per mode, per example i: (original prediction, typo prediction)."""
    return pd.DataFrame([{"mode": mode, "example_id": f"e{i}", "kind": kind, "gold": gold[i],
                          "predicted": pair[j]}
                         for mode, pairs in predicted.items() for i, pair in enumerate(pairs)
                         for j, kind in enumerate(("original", "typo"))])


@pytest.mark.filterwarnings("ignore::UserWarning")  # sklearn: kappa of one label is undefined
def test_downstream_kappa_rows_and_constant_predictor_notes():
    from sklearn.metrics import cohen_kappa_score

    from tunescope.compare.downstream_consistency import example_counts

    gold = ["pos", "neg"] * 6
    base_probe = [("pos", "pos"), ("neg", "pos"), ("pos", "neg"), ("neg", "neg")] * 3
    tuned_probe = [("pos", "pos"), ("neg", "neg"), ("pos", "pos"), ("neg", "pos")] * 3
    base = _c3_predictions({"probe": base_probe, "zero_shot": [("pos", "pos")] * 12}, gold)
    tuned = _c3_predictions({"probe": tuned_probe, "zero_shot": [(g, g) for g in gold]}, gold)
    table = compare_results(result("downstream_consistency", {"predictions": base}),
                            result("downstream_consistency", {"predictions": tuned}),
                            n_boot=300)
    kappa = rows(table, "kappa")
    for mode, b, t in (("probe", base_probe, tuned_probe),
                       ("zero_shot", [("pos", "pos")] * 12, [(g, g) for g in gold])):
        for side, pairs in (("base", b), ("tuned", t)):
            expected = cohen_kappa_score([p[0] for p in pairs], [p[1] for p in pairs])
            for kind in ("typo", "all"):
                got = kappa.loc[f"mode={mode},perturbation={kind}", side]
                assert got == pytest.approx(expected, nan_ok=True), (mode, side)
    probe = kappa.loc["mode=probe,perturbation=all"]
    # tuned by hand: p_o = 3/4, p_e = 1/2 * 3/4 + 1/2 * 1/4 = 1/2, kappa = 1/4 / 1/2
    assert probe["base"] == pytest.approx(0.0) and probe["tuned"] == pytest.approx(0.5)
    assert probe["test"] == "bootstrap_paired" and probe["ci_low"] <= probe["ci_high"]
    zero = table[table["key"].str.startswith("mode=zero_shot")]
    assert set(zero["metric"]) == {"accuracy_original", "accuracy_perturbed", "consistency",
                                   "kappa"}
    assert zero["note"].str.contains("constant predictor in zero_shot: base (always 'pos')",
                                     regex=False).all()
    assert not table.loc[table["key"].str.startswith("mode=probe"), "note"].str.contains(
        "constant").any()
    z = rows(zero, "kappa").loc["mode=zero_shot,perturbation=all"]
    assert np.isnan(z["base"]) and z["tuned"] == 1.0
    assert np.isnan(z["ci_low"]) and z["test"] == ""      # undefined on one side: no interval

    # a bootstrap replicate's kappa = sklearn's kappa of the resampled examples' pairs
    ids, parts = example_counts(base, "probe")
    rng = np.random.default_rng(3)
    weights = rng.multinomial(len(ids), np.full(len(ids), 1 / len(ids)), size=5)
    replicates = parts["all"][2].kappa(weights.astype(np.float64))
    for w, got in zip(weights, replicates):
        chosen = [base_probe[int(i[1:])] for i, k in zip(ids, w) for _ in range(k)]
        assert got == pytest.approx(cohen_kappa_score([p[0] for p in chosen],
                                                      [p[1] for p in chosen]), nan_ok=True)


# --- recall curves on different depths ----------------------------------------------------------

def _knockout(values_of, n_examples, n_layers, family):
    """per_example relative_change = values_of(example, relative depth (layer + 1) / n_layers)."""
    per = pd.DataFrame([{"example": e, "layer": l, "block": b,
                         "relative_change": values_of(e, (l + 1) / n_layers)}
                        for e in range(n_examples) for l in range(n_layers)
                        for b in ("subject", "last")])
    curves = (per.groupby(["layer", "block"])["relative_change"].mean().rename("mean")
              .reset_index().assign(relative_depth=lambda d: (d["layer"] + 1) / n_layers))
    return result("attention_knockout", {"per_example": per, "curves": curves}, family=family,
                  n_layers=n_layers)


def test_recall_curves_unpaired_on_the_base_depths():
    base = _knockout(lambda e, d: -10 * d - e, 3, 3, "llama")          # mean -10 d - 1
    tuned = _knockout(lambda e, d: -12 * d - e, 4, 4, "gemma3_text")   # mean -12 d - 1.5
    table = compare_results(base, tuned, n_boot=300)
    sub = rows(table[table["key"].str.startswith("block=subject")])
    assert sub.index.tolist() == [f"block=subject,layer={l}" for l in range(3)]
    depth = np.array([1, 2, 3]) / 3
    np.testing.assert_allclose(sub["depth"], depth)
    np.testing.assert_allclose(sub["base"], -10 * depth - 1)
    np.testing.assert_allclose(sub["tuned"], -12 * depth - 1.5)       # linear: exact interpolation
    np.testing.assert_allclose(sub["difference"], -2 * depth - 0.5)
    assert (table["test"] == "bootstrap_unpaired").all()
    assert (sub["n_base"] == 3).all() and (sub["n_tuned"] == 4).all()
    assert table["note"].str.contains(
        "different architectures: family llama vs gemma3_text, n_layers 3 vs 4").all()
    assert table["note"].str.contains("interpolated onto the base's relative depths").all()
    assert ((sub["ci_low"] <= sub["difference"]) & (sub["difference"] <= sub["ci_high"])).all()


# --- attention heads and ffn concepts -----------------------------------------------------------

def _knowledge(rows_):
    return pd.DataFrame(rows_, columns=["layer", "head", "word_a", "word_b"])


def test_heads_verb_contrast_hand_computed():
    shape = {"n_layers": 4, "n_heads": 2, "d_head": 3, "d_model": 6}
    base = _knowledge([(0, 0, "go", "run"), (0, 0, "run", "take"), (0, 1, "sky", "write")])
    tuned = _knowledge([(0, 0, "poem", "write"), (0, 0, "explain", "poem"),
                        (0, 0, "run", "take"), (0, 0, "blue", "tell"),
                        (0, 1, "sky", "write"), (0, 1, "go", "write")])
    # unit = head; group 0: instruction verbs write (heads (0,0) 0->1, (0,1) 1->2), explain,
    # tell gain in every changed head (share 1); general: go loses in (0,0) and gains in (0,1)
    # -> 0.5; run loses in (0,0) (2 -> 1 knowledge pairs) -> 0; take unchanged
    table = compare_results(result("attention_heads", {"knowledge": base}, **shape),
                            result("attention_heads", {"knowledge": tuned}, **shape), n_boot=300)
    g0 = rows(table).loc["group=0"]
    assert (g0["base"], g0["tuned"], g0["difference"]) == (0.25, 1.0, 0.75)
    ref = stats.ttest_ind([1.0, 1.0, 1.0], [0.5, 0.0], equal_var=False, alternative="greater")
    assert g0["statistic"] == pytest.approx(ref.statistic) == pytest.approx(3.0)
    assert g0["p_value"] == pytest.approx(ref.pvalue)
    assert g0["test"] == "welch_one_sided_greater" and (g0["n_base"], g0["n_tuned"]) == (2, 3)
    assert 0.5 <= g0["ci_low"] <= 0.75 <= g0["ci_high"] <= 1.0
    assert g0["depth"] == 0.125 and "heads joined" in g0["note"]


def test_heads_compare_notes_different_word_similarities():
    shape = {"n_layers": 4, "n_heads": 2}
    knowledge = _knowledge([(0, 0, "go", "write"), (0, 1, "sky", "write")])
    base = result("attention_heads", {"knowledge": knowledge}, **shape)
    tuned = result("attention_heads", {"knowledge": knowledge}, **shape)
    base.summary["similarity"], tuned.summary["similarity"] = "model embeddings", "minilm"
    notes = compare_results(base, tuned, n_boot=20)["note"]
    assert notes.str.contains("different word similarities: base 'model embeddings' vs "
                              "tuned 'minilm'").all()
    tuned.summary["similarity"] = "model embeddings"
    assert not compare_results(base, tuned, n_boot=20)["note"].str.contains(
        "different word similarities").any()


def test_heads_compare_recounts_old_results_from_pairs():
    """A Result without an unordered knowledge table: knowledge recounted from its pairs
    (ordered, mixed case; only pairs in more than one dimension of a head count)."""
    shape = {"n_layers": 4, "n_heads": 2}
    cols = ["layer", "head", "dim", "word_q", "word_k"]
    base = pd.DataFrame([(0, 0, 0, "Write", "poem"), (0, 0, 1, "poem", "write"),
                         (0, 0, 0, "go", "run"), (0, 0, 1, "run", "go")], columns=cols)
    tuned = pd.DataFrame([(0, 0, 0, "go", "run")], columns=cols)   # one dimension only
    old = {"word_q": ["x"], "word_k": ["y"], "layer": [0], "head": [0], "n_dims": [2]}
    table = compare_results(
        result("attention_heads", {"pairs": base, "knowledge": pd.DataFrame(old)}, **shape),
        result("attention_heads", {"pairs": tuned}, **shape), n_boot=50)
    g0 = rows(table).loc["group=0"]
    # write (instruction) and go, run (general) each lose their one knowledge pair: share 0
    assert (g0["base"], g0["tuned"], g0["n_base"], g0["n_tuned"]) == (0.0, 0.0, 2, 1)


def _labels(n_layers, category):
    return pd.DataFrame([{"layer": l, "component": c, "run": 0, "category": category(l, c),
                          "level": "semantics", "description": ""}
                         for l in range(n_layers) for c in range(4)])


def test_ffn_rotation_rows_match_rotation():
    base = result("ffn_concepts", {"labels": _labels(4, lambda l, c: "none")})
    tuned = result("ffn_concepts", {"labels": _labels(4, lambda l, c: "math" if c < 2 else "none")})
    table = compare_results(base, tuned, n_boot=200)
    share = rows(table, "category_share")
    math = share.loc["group=0,category=math"]
    assert (math["base"], math["tuned"], math["difference"]) == (0, 0.5, 0.5)
    assert share.loc["group=3,category=none", "depth"] == 0.875
    assert (share["n_base"] == 4).all()
    dist = rows(table, "category_distribution").loc["group=1"]
    assert dist["test"] == "permutation_tvd" and dist["statistic"] == pytest.approx(0.5)
    assert 0 < dist["p_value"] <= 1
    ref = rotation_from_results(base, tuned, n_groups=4, n_boot=50, n_permutations=50)
    assert len(share) == len(ref["differences"][ref["differences"]["field"] == "category"])
    unlabelled = result("ffn_concepts", {}, summary={"mean_top10_variance": 0.4, "n_layers": 4})
    only = compare_results(unlabelled, unlabelled)
    assert only["metric"].tolist() == ["mean_top10_variance"] and only["difference"][0] == 0
    assert "no labels table" in only["note"][0]


# --- every analysis end to end on tiny models ---------------------------------------------------

WORDS = list(dict.fromkeys(
    [w.strip(".,:!?").lower() for line in CORPUS for w in line.split()]
    + ["write", "give", "find", "make", "explain", "tell", "go", "run", "take", "see", "know"]))


def _datasets():
    from tunescope.data import builtin_instructions, builtin_pairs, builtin_task
    from tunescope.data.types import Task
    task = builtin_task()
    task = Task(task.name, task.labels, task.label_words, task.prompt_template,
                task.examples[:4] + task.examples[100:104])
    pairs = builtin_pairs()
    return {
        "prediction_consistency": (fact_relations(), {}),
        "representation_consistency": (pairs[:8] + pairs[160:168], {}),
        "downstream_consistency": (task, {}),
        "attention_knockout": (fact_relations(), {"window": 3}),
        "extraction_rate": (fact_relations(), {}),
        "subject_enrichment": (fact_relations(), {}),
        "attribution": (builtin_instructions()[:3],
                        {"max_new_tokens": 3}),
        "attention_heads": (WORDS, {"top_k": 8, "baseline": 20, "similarity": "model"}),
        "ffn_concepts": (WORDS, {"rank": 6, "top_words": 5}),
        "next_token_predictions": (("The capital of France is", "Spain is"), {}),
    }


RECALL = ("attention_knockout", "extraction_rate", "subject_enrichment")


@functools.lru_cache(maxsize=None)
def tiny_results(analysis: str) -> dict[str, Result]:
    """The analysis on a base (tiny Llama, 3 layers) and a tuned model (tiny Gemma 3, 4 layers:
    another family and depth); for C4, both trained on the facts (they must answer some)."""
    data, overrides = _datasets()[analysis]
    a = get(analysis)
    make = tiny_trained_lm if analysis in RECALL else tiny_lm
    return {key: a.run(make(family), data, a.make_config(**overrides))
            for key, family in (("base", "llama"), ("gemma", "gemma3"))}


def _own_values(analysis, res) -> dict[tuple[str, str], float]:
    """(metric, key) -> the analysis' own number that the comparison's base column repeats."""
    t = res.tables
    if analysis == "prediction_consistency":
        return {(m, f"relation={r.relation}"): getattr(r, m)
                for r in t["per_relation"].itertuples() for m in ("accuracy", "consistency")}
    if analysis == "representation_consistency":
        layers = t["layers"][(t["layers"]["source"] == "all") & ~t["layers"]["normed"]]
        own = {(m, f"pooling={r.pooling},layer={r.layer}"): getattr(r, m)
               for r in layers.itertuples() for m in ("gap", "auc")}
        summaries = {(f"{m}_{s}", f"pooling={p}"): res.summary[f"{p}_{m}_{s}"]
                     for p in ("mean", "last") for m in ("auc", "gap")
                     for s in ("all_layers", "early", "middle", "late")}
        return {**own, **{k: np.nan if v is None else v for k, v in summaries.items()}}
    if analysis == "downstream_consistency":
        return {(m, f"mode={r.mode},perturbation={r.kind}"): getattr(r, m)
                for r in t["metrics"].itertuples()
                for m in ("accuracy_original", "accuracy_perturbed", "consistency", "kappa")}
    if analysis == "attention_knockout":
        return {("relative_change", f"block={r.block},layer={r.layer}"): r.mean
                for r in t["curves"].itertuples()}
    if analysis == "extraction_rate":
        return {("extraction_rate", f"component={r.component},layer={r.layer}"): r.rate
                for r in t["rates"].itertuples()}
    if analysis == "subject_enrichment":
        return {(m, f"position={r.position},layer={r.layer}"): v for r in t["curves"].itertuples()
                for m, v in (("probability", r.mean_probability), ("top1_share", r.top1_share))}
    if analysis == "attribution":
        return {("instruction_score", ""): res.summary["mean_instruction_score"]}
    if analysis == "next_token_predictions":
        return {("mean_top1_probability", ""): res.summary["mean_top1_probability"]}
    return {}


def test_every_registered_analysis_has_a_comparer():
    assert set(REGISTRY) <= set(COMPARERS)


@pytest.mark.parametrize("analysis", sorted(REGISTRY))
def test_end_to_end_on_tiny_models(analysis):
    results = tiny_results(analysis)
    table = compare_study(results, "base", n_boot=200, seed=1)
    assert list(table.columns) == ["model", *COLUMNS]
    assert len(table) > 0 and (table["model"] == "gemma").all()
    assert (table["analysis"] == analysis).all()
    assert table["note"].str.contains("different architectures: family llama vs gemma3_text, "
                                      "n_layers 3 vs 4").all()
    np.testing.assert_allclose(table["difference"], table["tuned"] - table["base"], equal_nan=True)
    ci = table.dropna(subset=["ci_low", "ci_high"])
    assert (ci["ci_low"] <= ci["ci_high"] + 1e-12).all()
    p = table["p_value"].dropna()
    assert ((p > 0) & (p <= 1)).all()
    assert table.loc[table["test"] != "", "p_value"].notna().all()
    assert (table["n_base"] >= 0).all() and table["depth"].dropna().between(0, 1).all()
    shares = table[table["metric"].isin(["accuracy", "consistency", "extraction_rate", "auc",
                                         "top1_share", "probability", "category_share"])]
    assert shares[["base", "tuned"]].stack().between(0, 1).all()
    indexed = table.set_index(["metric", "key"])
    for where, value in _own_values(analysis, results["base"]).items():
        assert indexed.loc[where, "base"] == pytest.approx(value, nan_ok=True), where
    pd.testing.assert_frame_equal(table, compare_study(results, "base", n_boot=200, seed=1))


def test_same_depth_needs_no_interpolation():
    pairs = _datasets()["representation_consistency"][0]
    a = get("representation_consistency")
    base, tuned = (a.run(tiny_lm("llama", seed=s), pairs, a.make_config()) for s in (0, 1))
    table = compare_results(base, tuned, n_boot=100)
    layers = tuned.tables["layers"]
    own = layers[layers["source"] == "all"].set_index(["pooling", "layer"])
    n_layers = tuned.summary["n_layers"]
    for r in table[table["metric"] == "auc"].itertuples():
        parts = dict(p.split("=") for p in r.key.split(","))
        layer = n_layers + 1 if parts["layer"] == "normed" else int(parts["layer"])
        assert r.tuned == pytest.approx(own.loc[(parts["pooling"], layer), "auc"])
        assert own.loc[(parts["pooling"], layer), "normed"] == (parts["layer"] == "normed")
    assert not table["note"].str.contains("interpolated|different architectures").any()
    empty = table["base"].isna()       # last pooling, early band: only the degenerate layer 0
    assert set(table.loc[empty, "metric"]) == {"auc_early", "gap_early"}
    assert (table.loc[~empty, "test"] == "bootstrap_paired").all()
