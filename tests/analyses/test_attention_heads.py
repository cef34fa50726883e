"""W2 attention heads: vectorised pairs equal a per-dimension loop; norm folding; GQA; knowledge."""

import pytest
import torch
from tiny import CORPUS, tiny_lm

from tunescope.analyses.attention_heads import (
    attention_heads,
    head_projections,
    layer_pairs,
    layer_pairs_reference,
    similarity_thresholds,
    unit_rows,
)
from tunescope.analyses.helpers.word_vectors import word_vectors
from tunescope.errors import TunescopeError
from tunescope.result import Result

WORDS = list(dict.fromkeys(w.strip(".,:!?").lower() for line in CORPUS for w in line.split()))


def _inputs(lm, words=WORDS):
    unit = unit_rows(word_vectors(lm, words, "embed"))
    return unit, similarity_thresholds(unit, baseline=20, z=0.5)


@pytest.mark.parametrize("family", ["llama", "gemma3", "gpt2", "gpt_neox"])
def test_vectorised_pairs_equal_the_loop(family):
    lm = tiny_lm(family)
    unit, thr = _inputs(lm)
    with torch.no_grad():
        hq, hk = head_projections(lm, 1, word_vectors(lm, WORDS, "embed"))
    p = layer_pairs(hq, hk, unit, thr, top_k=10)
    got = set(zip(p.head.tolist(), p.dim.tolist(), p.word_q.tolist(), p.word_k.tolist()))
    ref = layer_pairs_reference(hq, hk, unit, thr, top_k=10)
    assert got == ref and len(got) > 0


def test_norm_gain_folded_and_kv_heads_repeated():
    lm = tiny_lm("llama")  # 6 query heads, 2 key/value heads
    a = lm.anatomy
    with torch.no_grad():
        a.ln_attn(0).weight.normal_(1.0, 0.3)
        emb = word_vectors(lm, WORDS[:7], "embed")
        hq, hk = head_projections(lm, 0, emb)
        scaled = emb * a.ln_attn(0).weight
        q = a.q_proj(0)(scaled).view(7, 6, 8).permute(1, 0, 2)
        k = a.k_proj(0)(scaled).view(7, 2, 8).permute(1, 0, 2)
    torch.testing.assert_close(hq, q)
    torch.testing.assert_close(hk, k.repeat_interleave(3, dim=0))
    assert torch.equal(hk[0], hk[2]) and not torch.equal(hk[2], hk[3])


def test_analysis_tables_and_knowledge(tmp_path):
    lm = tiny_lm("gemma3")
    res = attention_heads(lm, WORDS, _config(top_k=10, baseline=20, z=0.5),
                          similarity_vectors=lambda w: word_vectors(lm, w, "embed"))
    pairs, knowledge = res.tables["pairs"], res.tables["knowledge"]
    assert set(pairs["layer"]) == set(range(lm.anatomy.n_layers))
    assert (pairs["word_q"] != pairs["word_k"]).all()
    unordered = pairs.assign(a=pairs[["word_q", "word_k"]].min(axis=1),
                             b=pairs[["word_q", "word_k"]].max(axis=1))
    counts = unordered.groupby(["layer", "head", "a", "b"])["dim"].nunique()
    assert len(knowledge) == int((counts > 1).sum()) == res.summary["n_knowledge_pairs"]
    assert (knowledge["n_dims"] > 1).all() and (knowledge["word_a"] <= knowledge["word_b"]).all()
    assert res.summary["heads_with_knowledge"] == len(res.tables["heads"])
    assert res.summary["n_words"] == len(WORDS)
    assert Result.load(res.save(tmp_path / "w2")) == res
    top = attention_heads(lm, WORDS, _config(top_k=10, baseline=20, z=0.5, dims_per_head=2),
                          similarity_vectors=lambda w: word_vectors(lm, w, "embed"))
    assert top.tables["pairs"]["dim_rank"].max() <= 1


def _config(**kw):
    from tunescope.analyses import get
    return get("attention_heads").make_config(**kw)


def test_errors():
    lm = tiny_lm("gpt2")
    with pytest.raises(TunescopeError, match="smaller than top_k"):
        attention_heads(lm, WORDS[:5], _config(top_k=10), similarity_vectors=lambda w: torch.ones(len(w), 3))
    with pytest.raises(TunescopeError, match="layers must lie"):
        attention_heads(lm, WORDS, _config(top_k=5, layers=(7,)), similarity_vectors=lambda w: torch.ones(len(w), 3))
