"""C2 representation consistency: pooled vectors against unbatched runs, one forward pass per
batch, ROC-AUC against sklearn, metrics against hand-computed values, errors, save/load."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from tiny import CHAT_TEMPLATE, tiny_lm
from tunescope.analyses import get, representation_consistency
from tunescope.analyses.representation import (RepresentationConfig, layer_metrics,
                                               roc_auc, sentence_ids)
from tunescope.engine.pooling import pooled_states
from tunescope.data.pairs import builtin_pairs
from tunescope.data.types import ParaphrasePair
from tunescope.engine.batching import encode, length_buckets
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
    assert len(same) == 2 * (lm.anatomy.n_layers + 1)
    np.testing.assert_allclose(same["cosine"], 1.0, atol=1e-6)


def test_tables_consistent_with_pairs():
    lm = tiny_lm("llama")
    result = representation_consistency(lm, PAIRS)
    pairs, layers = result.tables["pairs"], result.tables["layers"]
    n = lm.anatomy.n_layers + 1
    assert list(pairs.columns) == ["pair", "pooling", "layer", "cosine", "label", "source"]
    assert list(layers.columns) == ["pooling", "layer", "relative_depth", "paraphrase_mean",
                                    "nonparaphrase_mean", "gap", "auc", "n_pairs"]
    assert len(pairs) == len(PAIRS) * 2 * n and len(layers) == 2 * n
    means = pairs.pivot_table(index=["pooling", "layer"], columns="label", values="cosine")
    merged = layers.set_index(["pooling", "layer"]).join(means)
    np.testing.assert_allclose(merged["paraphrase_mean"], merged[1])
    np.testing.assert_allclose(merged["nonparaphrase_mean"], merged[0])
    np.testing.assert_allclose(merged["gap"], merged[1] - merged[0])
    for (pooling, layer), group in pairs.groupby(["pooling", "layer"]):
        row = merged.loc[(pooling, layer)]
        assert row["auc"] == pytest.approx(roc_auc_score(group["label"], group["cosine"]))
    assert (layers["n_pairs"] == len(PAIRS)).all()
    assert layers["relative_depth"].iloc[[0, n - 1]].tolist() == [0.0, 1.0]
    s = result.summary
    assert (s["n_pairs"], s["n_sentences"], s["n_layers"]) == (5, 6, n - 1)
    mean = layers[layers["pooling"] == "mean"]
    assert s["mean_best_auc"] == mean["auc"].max()
    assert s["mean_best_layer"] == mean.loc[mean["auc"].idxmax(), "layer"]
    assert s["last_last_gap"] == pytest.approx(layers[layers["pooling"] == "last"]["gap"].iloc[-1])
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
    assert result.summary["prompt_format"] == "chat" and "mean_best_auc" not in result.summary
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
