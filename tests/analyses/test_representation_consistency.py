"""C2 representation consistency: pooled vectors against unbatched runs, one forward pass per
batch, ROC-AUC against sklearn, metrics against hand-computed values, errors, save/load."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score
from tiny import CHAT_TEMPLATE, tiny_lm

from tunescope.analyses import get, representation_consistency
from tunescope.analyses.representation_consistency import (
    RepresentationConfig,
    degenerate_layers,
    layer_metrics,
    lexical_overlap,
    roc_auc,
    sentence_ids,
)
from tunescope.data.pairs import builtin_pairs
from tunescope.data.types import ParaphrasePair
from tunescope.engine.batching import encode, length_buckets
from tunescope.engine.pooling import pooled_states
from tunescope.errors import TunescopeError
from tunescope.models.hooks import trace
from tunescope.result import Result

SENTENCES = ["Paris is the capital of France.", "The capital of France is Paris.",
             "Rome is in Italy.", "Write a short poem about the sea.", "I like apples.",
             "Explain why the sky is blue, please, in one line."]
PAIRS = [ParaphrasePair(SENTENCES[0], SENTENCES[1], 1, "x"),
         ParaphrasePair(SENTENCES[0], SENTENCES[2], 0, "x"),
         ParaphrasePair(SENTENCES[3], SENTENCES[5], 1, "y"),
         ParaphrasePair(SENTENCES[4], SENTENCES[5], 0, "y"),
         ParaphrasePair(SENTENCES[4], SENTENCES[4], 1, "y")]


@torch.inference_mode()
def _reference(lm, sentence):
    """Mean (first position left out), mean over all and last-token vectors
    [n_layers + 1, d_model] of one sentence run alone."""
    ids = torch.tensor([encode(lm, [sentence])[0]])
    with trace(lm, points=("embed", "resid_post")) as rec:
        lm.model(input_ids=ids)
    h = torch.cat([rec["embed"][0][None], rec.stack("resid_post")])[:, 0].float()  # [L+1, T, d]
    return h[:, 1:].mean(1), h.mean(1), h[:, -1]


def test_pooled_equals_unbatched(lm):
    ids = encode(lm, SENTENCES)
    pooled = pooled_states(lm, ids, poolings=("mean", "mean_all", "last"), batch_size=4)
    n = lm.anatomy.n_layers + 1
    for i, sentence in enumerate(SENTENCES):
        mean, mean_all, last = _reference(lm, sentence)
        assert pooled["mean"][i].shape == (n, lm.anatomy.d_model)
        torch.testing.assert_close(pooled["mean"][i], mean, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(pooled["mean_all"][i], mean_all, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(pooled["last"][i], last, atol=1e-5, rtol=1e-5)


def test_layers_match_hf_hidden_states():
    """Layers 0..n_layers-1 equal HF's hidden states (its last one has the final norm)."""
    lm = tiny_lm("llama")
    pooled = pooled_states(lm, encode(lm, SENTENCES[:1]), poolings=("last",))
    with torch.inference_mode():
        hs = lm.model(input_ids=torch.tensor(encode(lm, SENTENCES[:1])),
                      output_hidden_states=True).hidden_states
    ref = torch.stack([h[0, -1] for h in hs[:-1]])
    torch.testing.assert_close(pooled["last"][0, :-1], ref, atol=1e-5, rtol=1e-5)


def test_one_forward_pass_per_batch(monkeypatch):
    lm = tiny_lm("gpt2")
    calls = []
    forward = lm.model.forward
    monkeypatch.setattr(lm.model, "forward",
                        lambda *a, **k: (calls.append(1), forward(*a, **k))[1])
    pairs = builtin_pairs()[:40]
    result = representation_consistency(lm, pairs, RepresentationConfig(batch_size=8))
    n_sentences = result.summary["n_sentences"]
    sentences = list(dict.fromkeys(s for p in pairs for s in (p.a, p.b)))
    lengths = [len(ids) for ids in encode(lm, sentences)]
    assert len(calls) == len(length_buckets(lengths, 8))  # one pass per batch, not per layer
    assert n_sentences == len(sentences) < 2 * len(pairs)  # shared sentences encoded once
    assert len(calls) == -(-n_sentences // 8)


def test_roc_auc_hand_computed():
    assert roc_auc([0.9, 0.8, 0.3], [1, 0, 0]) == 1.0
    assert roc_auc([0.5, 0.5], [1, 0]) == 0.5
    assert roc_auc([0.1, 0.8, 0.3], [1, 0, 0]) == 0.0
    assert roc_auc([0.4, 0.8, 0.4, 0.2], [1, 1, 0, 0]) == 0.875  # (.5 + 1 + 1 + 1) / 4


def test_roc_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, size=(200, 3)) / 5.0  # many ties
    labels = rng.integers(0, 2, size=200)
    ours = roc_auc(scores, labels)
    for k in range(3):
        assert ours[k] == pytest.approx(roc_auc_score(labels, scores[:, k]), abs=1e-12)


def test_identical_sentences_cosine_one():
    lm = tiny_lm("gemma3")
    pairs = [ParaphrasePair("Tokyo is in Japan.", "Tokyo is in Japan.", 1),
             ParaphrasePair("Tokyo is in Japan.", "I like apples.", 0)]
    table = representation_consistency(lm, pairs).tables["pairs"]
    same = table[table["pair"] == 0]
    assert len(same) == 2 * (lm.anatomy.n_layers + 2)           # + the final-normed layer
    np.testing.assert_allclose(same["cosine"], 1.0, atol=1e-6)


def test_tables_consistent_with_pairs():
    lm = tiny_lm("llama")
    result = representation_consistency(lm, PAIRS)
    pairs, every = result.tables["pairs"], result.tables["layers"]
    n = lm.anatomy.n_layers + 2                                  # 0..n_layers and the normed
    assert list(pairs.columns) == ["pair", "pooling", "layer", "cosine", "label", "source"]
    assert list(every.columns) == ["pooling", "source", "layer", "normed", "relative_depth",
                                   "band", "paraphrase_mean", "nonparaphrase_mean", "gap", "auc",
                                   "degenerate", "n_pairs"]
    assert len(pairs) == len(PAIRS) * 2 * n and len(every) == 3 * 2 * n   # all, x, y
    layers = every[every["source"] == "all"].drop(columns="source")
    means = pairs.pivot_table(index=["pooling", "layer"], columns="label", values="cosine")
    merged = layers.set_index(["pooling", "layer"]).join(means)
    np.testing.assert_allclose(merged["paraphrase_mean"], merged[1])
    np.testing.assert_allclose(merged["nonparaphrase_mean"], merged[0])
    np.testing.assert_allclose(merged["gap"], merged[1] - merged[0])
    for (pooling, layer), group in pairs.groupby(["pooling", "layer"]):
        row = merged.loc[(pooling, layer)]
        assert row["auc"] == pytest.approx(roc_auc_score(group["label"], group["cosine"]))
    assert (layers["n_pairs"] == len(PAIRS)).all()
    assert layers["relative_depth"].iloc[[0, n - 2, n - 1]].tolist() == [0.0, 1.0, 1.0]
    assert layers["normed"].tolist() == [False] * (n - 1) + [True] + [False] * (n - 1) + [True]
    s = result.summary
    assert (s["n_pairs"], s["n_sentences"], s["n_layers"]) == (5, 6, n - 2)
    last = layers[layers["pooling"] == "last"]
    assert s["last_last_gap"] == pytest.approx(last["gap"].iloc[-2])     # before the final norm
    assert s["last_normed_gap"] == pytest.approx(last["gap"].iloc[-1])
    assert not any("best" in k for k in s)
    assert get("representation_consistency").dataset == "pairs"


def test_layer_metrics_hand_computed():
    cosines = np.array([[0.9, 0.5], [0.7, 0.5], [0.2, 0.6], [0.4, 0.1]])
    m = layer_metrics(cosines, np.array([1, 1, 0, 0]))
    assert m["paraphrase_mean"].tolist() == pytest.approx([0.8, 0.5])
    assert m["nonparaphrase_mean"].tolist() == pytest.approx([0.3, 0.35])
    assert m["gap"].tolist() == pytest.approx([0.5, 0.15])
    assert m["auc"].tolist() == pytest.approx([1.0, 0.5])  # layer 1: 0.5>0.1 twice, 0.5<0.6 twice
    assert m["relative_depth"].tolist() == [0.0, 1.0]


def test_single_pooling_and_chat():
    lm = tiny_lm("llama", chat=True)
    result = representation_consistency(lm, PAIRS, RepresentationConfig(poolings=("last",),
                                                                         chat=True))
    assert set(result.tables["pairs"]["pooling"]) == {"last"}
    assert result.summary["prompt_format"] == "chat" and "mean_auc_all_layers" not in result.summary
    assert "last_auc_all_layers" in result.summary
    assert result.provenance["config"]["chat"] is True


def test_chat_template_bos_not_doubled():
    lm = tiny_lm("llama", chat=True)
    lm.tokenizer.chat_template = "<bos>" + CHAT_TEMPLATE
    bos = lm.tokenizer.bos_token_id
    ids = sentence_ids(lm, ["I like apples."], chat=True)[0]
    assert ids[0] == bos and ids[1] != bos


def test_errors():
    lm = tiny_lm("llama")
    with pytest.raises(TunescopeError, match="no paraphrase pairs"):
        representation_consistency(lm, [])
    with pytest.raises(TunescopeError, match="ROC-AUC"):
        representation_consistency(lm, [p for p in PAIRS if p.label == 1])
    with pytest.raises(TunescopeError, match="unknown pooling .max."):
        representation_consistency(lm, PAIRS, RepresentationConfig(poolings=("max",)))
    with pytest.raises(TunescopeError, match="ROC-AUC is undefined"):
        roc_auc([0.1, 0.2], [0, 0])
    with pytest.raises(TunescopeError, match="chat template"):
        representation_consistency(lm, PAIRS, RepresentationConfig(chat=True))


def test_result_saves_and_loads(tmp_path):
    result = representation_consistency(tiny_lm("gpt_neox"), PAIRS)
    assert Result.load(result.save(tmp_path / "r")) == result
    assert isinstance(result.tables["layers"], pd.DataFrame)


# --- lexical control, degenerate layers, pre-declared summaries, sources -----------------------

def test_lexical_overlap_hand_computed():
    assert lexical_overlap(SENTENCES[0], SENTENCES[1]) == 1.0       # same six words, reordered
    # {paris, is, the, capital, of, france} vs {rome, is, in, italy}: {is} of 9 words
    assert lexical_overlap(SENTENCES[0], SENTENCES[2]) == pytest.approx(1 / 9)
    assert lexical_overlap("Don't STOP!", "don t stop") == 1.0     # lower-cased \w+ runs
    assert lexical_overlap("I like apples.", "Explain why the sky is blue.") == 0.0
    assert lexical_overlap("...", "!") == 1.0                      # no word on either side


def test_lexical_control_matches_sklearn_per_source():
    lm = tiny_lm("llama")
    result = representation_consistency(lm, PAIRS, RepresentationConfig(n_boot=20))
    # Jaccard by hand: pair 0 the same words; pair 1 {is} of 9; pair 2 {the} of
    # {write a short poem about the sea explain why sky is blue please in one line} (16);
    # pair 3 nothing shared; pair 4 a sentence with itself
    jaccard = np.array([1.0, 1 / 9, 1 / 16, 0.0, 1.0])
    labels = np.array([p.label for p in PAIRS])
    lexical = result.tables["lexical"].set_index("source")
    assert lexical.index.tolist() == ["all", "x", "y"]
    assert lexical.loc["all", "auc"] == pytest.approx(roc_auc_score(labels, jaccard))
    assert result.summary["lexical_auc"] == pytest.approx(roc_auc_score(labels, jaccard))
    for source, idx in (("x", [0, 1]), ("y", [2, 3, 4])):
        want = roc_auc_score(labels[idx], jaccard[idx])
        assert lexical.loc[source, "auc"] == pytest.approx(want)
        assert result.summary[f"lexical_auc_{source}"] == pytest.approx(want)
        assert lexical.loc[source, "n_pairs"] == len(idx)
    assert lexical.loc["y", "paraphrase_mean"] == pytest.approx((1 / 16 + 1.0) / 2)


def test_lexical_control_below_chance_when_non_paraphrases_share_more_words():
    pairs = [ParaphrasePair("The cat sat on the mat.", "A feline rested on a rug.", 1),
             ParaphrasePair("He bought a car.", "He purchased an automobile.", 1),
             ParaphrasePair("The cat sat on the mat.", "The mat sat on the cat.", 0),
             ParaphrasePair("He bought a car.", "He did not buy a car.", 0)]
    result = representation_consistency(tiny_lm("gpt2"), pairs, RepresentationConfig(n_boot=10))
    assert result.summary["lexical_auc"] == 0.0


def test_degenerate_layers_constructed():
    cos = np.array([[1.0, 0.9, 0.5, 0.7], [1.0 - 1e-8, 0.9, 0.5, 0.2],
                    [1.0, 0.9, 0.4, 0.7], [1.0, 0.9, 0.4, 0.2]])
    labels = np.array([1, 1, 0, 0])
    assert degenerate_layers(cos).tolist() == [True, True, False, False]
    # column 2 is constant within each label but separates them: a perfect AUC, not degenerate
    m = layer_metrics(cos, labels)
    assert m["degenerate"].tolist() == [True, True, False, False]
    assert m["auc"].tolist() == [0.25, 0.5, 1.0, 0.5]   # layer 0: rounding noise ranks the pairs


def test_degenerate_layer_flagged_and_left_out():
    """Every sentence ends in '.', so last-token pooling at the embedding output gives cosine
    1 for every pair: flagged, marked, and left out of the layer means."""
    lm = tiny_lm("llama")
    result = representation_consistency(lm, PAIRS, RepresentationConfig(n_boot=50))
    layers = result.tables["layers"]
    top = layers[layers["source"] == "all"].set_index(["pooling", "layer"])
    assert top.loc[("last", 0), "degenerate"] and top.loc[("last", 0), "auc"] == 0.5
    assert not top.loc["mean", "degenerate"].any()
    s = result.summary
    assert s["last_degenerate_layers"] == [0] and s["mean_degenerate_layers"] == []
    assert [f for f in s["flags"] if f.startswith("last pooling:")] == [
        "last pooling: degenerate layer 0 (all pair cosines equal within 1e-06: AUC 0.5 and "
        "gap 0 by construction); left out of the layer means and bands"]
    usable = [1, 2, 3]
    aucs = [top.loc[("last", l), "auc"] for l in usable]
    assert s["last_auc_all_layers"] == pytest.approx(np.mean(aucs))
    assert s["last_auc_early"] is None                           # its only layer is layer 0
    summaries = result.tables["summaries"]
    row = summaries[(summaries["pooling"] == "last") & (summaries["source"] == "all")
                    & (summaries["scope"] == "early") & (summaries["metric"] == "auc")].iloc[0]
    assert row["n_layers_used"] == 0 and np.isnan(row["value"])


def _band(layer, n_layers):
    d = layer / n_layers
    return "early" if d < 1 / 3 else "middle" if d < 2 / 3 else "late"


def test_band_summaries_against_numpy_means():
    """Summaries from the pairs table alone: sklearn AUC and numpy gap per layer, averaged with
    numpy over the layers of each band (gemma3: 4 blocks, so layers 0, 1 early, 2 middle, 3, 4
    late; the normed layer 5 in none)."""
    lm = tiny_lm("gemma3")
    pairs = builtin_pairs()[:12] + builtin_pairs()[160:172]
    result = representation_consistency(lm, pairs, RepresentationConfig(n_boot=200, seed=3))
    n = lm.anatomy.n_layers
    assert [_band(l, n) for l in range(n + 1)] == ["early", "early", "middle", "late", "late"]
    table = result.tables["pairs"]
    summaries = result.tables["summaries"].set_index(["pooling", "source", "scope", "metric"])
    for pooling in ("mean", "last"):
        for source in ("all", "written", "factual"):
            sub = table[(table["pooling"] == pooling)
                        & ((table["source"] == source) if source != "all" else True)]
            per_layer = {}
            for layer, g in sub.groupby("layer"):
                if layer > n or np.ptp(g["cosine"]) <= 1e-6:
                    continue                                     # normed, degenerate
                per_layer[layer] = (roc_auc_score(g["label"], g["cosine"]),
                                    g.loc[g["label"] == 1, "cosine"].mean()
                                    - g.loc[g["label"] == 0, "cosine"].mean())
            for scope in ("all_layers", "early", "middle", "late"):
                chosen = [l for l in per_layer if scope == "all_layers" or _band(l, n) == scope]
                for k, metric in enumerate(("auc", "gap")):
                    got = summaries.loc[(pooling, source, scope, metric)]
                    assert got["n_layers_used"] == len(chosen)
                    if not chosen:
                        assert np.isnan(got["value"])
                        continue
                    want = np.mean([per_layer[l][k] for l in chosen])
                    assert got["value"] == pytest.approx(want)
                    if source == "all":
                        assert result.summary[f"{pooling}_{metric}_{scope}"] == pytest.approx(want)
                    assert got["ci_low"] <= got["value"] + 1e-9 <= got["ci_high"] + 2e-9


def test_summary_intervals_against_a_plain_bootstrap():
    """The CI of the mean AUC over layers is close to a plain bootstrap written from the
    definition (resample pairs within each label, sklearn AUC per layer, mean over layers)."""
    lm = tiny_lm("llama")
    pairs = builtin_pairs()[:20] + builtin_pairs()[160:180]
    config = RepresentationConfig(poolings=("mean",), n_boot=1000, seed=0)
    result = representation_consistency(lm, pairs, config)
    s = result.summary
    table = result.tables["pairs"]
    cos = table.pivot(index="pair", columns="layer", values="cosine").to_numpy()[:, :-1]
    labels = np.array([p.label for p in pairs])
    rng = np.random.default_rng(123)
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    means = []
    for _ in range(1000):
        idx = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        means.append(np.mean([roc_auc_score(labels[idx], cos[idx, l])
                              for l in range(cos.shape[1])]))
    low, high = np.quantile(means, [0.025, 0.975])
    assert s["mean_auc_all_layers_ci_low"] == pytest.approx(low, abs=0.03)
    assert s["mean_auc_all_layers_ci_high"] == pytest.approx(high, abs=0.03)
    again = representation_consistency(lm, pairs, config)
    assert again.summary == s                                   # seeded: deterministic
    other = representation_consistency(lm, pairs, RepresentationConfig(
        poolings=("mean",), n_boot=1000, seed=1)).summary
    assert other["mean_auc_all_layers"] == s["mean_auc_all_layers"]
    assert other["mean_auc_all_layers_ci_low"] != s["mean_auc_all_layers_ci_low"]


def test_per_source_rows_and_single_label_source_skipped():
    lm = tiny_lm("llama")
    extra = [ParaphrasePair("Tokyo is in Japan.", "Japan contains Tokyo.", 1, "z")]
    result = representation_consistency(lm, PAIRS + extra, RepresentationConfig(n_boot=20))
    layers, table = result.tables["layers"], result.tables["pairs"]
    assert sorted(set(layers["source"])) == ["all", "x", "y"]
    for source in ("x", "y"):
        own = layers[(layers["source"] == source) & (layers["pooling"] == "mean")]
        sub = table[(table["source"] == source) & (table["pooling"] == "mean")]
        for r in own.itertuples():
            g = sub[sub["layer"] == r.layer]
            assert r.auc == pytest.approx(roc_auc_score(g["label"], g["cosine"]))
            assert r.n_pairs == len(g)
    assert ("source 'z': all 1 pairs have label 1; no per-source metrics (its pairs count in "
            "source 'all')") in result.summary["flags"]
    assert "lexical_auc_z" not in result.summary
    assert (layers.loc[layers["source"] == "all", "n_pairs"] == 6).all()


def test_one_source_gives_no_per_source_rows():
    pairs = [ParaphrasePair(p.a, p.b, p.label, "only") for p in PAIRS]
    result = representation_consistency(tiny_lm("llama"), pairs, RepresentationConfig(n_boot=10))
    assert set(result.tables["layers"]["source"]) == {"all"}
    assert list(result.tables["lexical"]["source"]) == ["all"]


def test_normed_layer_optional():
    lm = tiny_lm("gpt2")
    result = representation_consistency(lm, PAIRS, RepresentationConfig(normed=False, n_boot=10))
    assert result.tables["layers"]["layer"].max() == lm.anatomy.n_layers
    assert not result.tables["layers"]["normed"].any()
    assert "mean_normed_auc" not in result.summary and "mean_last_auc" in result.summary
