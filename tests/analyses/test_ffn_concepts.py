"""ffn_concepts (W3): principal components of the MLP down-projections, their top words,
labels, and principal angles between models."""

import numpy as np
import pytest
import scipy.linalg
import torch
from tiny import tiny_lm

from tunescope.analyses.ffn_concepts import (
    CosineTopWords,
    FFNConceptsConfig,
    component_top_words,
    ffn_concepts,
    layer_components,
    unit_rows,
)
from tunescope.analyses.helpers.word_vectors import word_vectors
from tunescope.analyses.registry import get
from tunescope.compare.ffn_concepts import layer_principal_angles, principal_angles
from tunescope.errors import TunescopeError
from tunescope.labels.concept_labels import CATEGORIES, LEVELS
from tunescope.result import Result

WORDS = ["capital", "France", "Paris", "Italy", "Rome", "Berlin", "Germany", "write", "short",
         "poem", "sea", "explain", "sky", "blue", "official", "language", "Spain", "Spanish",
         "Tokyo", "Japan", "translate", "sentence", "French", "apples", "classify", "review",
         "film", "wonderful", "answer", "summarize", "text", "line", "number", "code"]


@pytest.fixture(scope="module")
def llama():
    return tiny_lm("llama")


def test_registered_with_vocabulary_dataset():
    analysis = get("ffn_concepts")
    assert analysis.dataset == "vocabulary" and analysis.config is FFNConceptsConfig
    assert analysis.make_config(rank=5).rank == 5


def test_explained_variance_sums_to_one_and_matches_numpy(llama):
    res = ffn_concepts(llama, WORDS, FFNConceptsConfig(rank=4, top_words=5, labeller="none"))
    comps = res.tables["components"]
    assert set(comps["layer"]) == set(range(llama.anatomy.n_layers))
    for layer, sub in comps.groupby("layer"):
        w = llama.anatomy.mlp_down_weight(layer).detach().double().numpy()    # [96, 48]
        s = np.linalg.svd(w - w.mean(0), compute_uv=False)
        expected = s ** 2 / (s ** 2).sum()
        np.testing.assert_allclose(sub["explained_variance"].to_numpy(), expected, atol=1e-5)
        assert sub["cumulative"].iloc[-1] == pytest.approx(1.0, abs=1e-6)
        assert np.all(np.diff(sub["explained_variance"].to_numpy()) <= 1e-7)
    assert len(res.summary["top10_variance_by_layer"]) == llama.anatomy.n_layers
    assert "labels" not in res.tables


def test_gemma_components_read_the_post_feedforward_norm_gain():
    """W3: Gemma's post-feed-forward norm gain scales what neurons write; the components are
    those of the down projection with that gain folded into its d_model axis."""
    lm = tiny_lm("gemma3")
    block = lm.anatomy.blocks[1]
    with torch.no_grad():
        block.post_feedforward_layernorm.weight.normal_(0.0, 3.0)
    res = ffn_concepts(lm, WORDS, FFNConceptsConfig(rank=4, top_words=5, layers=(1,),
                                                    labeller="none"))
    w = block.mlp.down_proj.weight.T.detach().double().numpy()                  # [64, 32] raw
    w = w * (1.0 + block.post_feedforward_layernorm.weight.detach().double().numpy())
    s = np.linalg.svd(w - w.mean(0), compute_uv=False)
    np.testing.assert_allclose(res.tables["components"]["explained_variance"].to_numpy(),
                               s ** 2 / (s ** 2).sum(), atol=1e-5)


def test_components_are_unit_orthogonal_with_sign_convention(llama):
    comps, explained = layer_components(llama.anatomy.mlp_down_weight(1))
    assert comps.shape == (48, 48) and explained.shape == (48,)
    torch.testing.assert_close(comps @ comps.T, torch.eye(48), atol=1e-4, rtol=0)
    peak = comps.gather(1, comps.abs().argmax(1, keepdim=True))
    assert (peak > 0).all()


def test_top_words_equal_brute_force_loop(llama):
    k, rank = 6, 5
    res = ffn_concepts(llama, WORDS, FFNConceptsConfig(rank=rank, top_words=k, layers=(2,),
                                                       labeller="none"))
    table = res.tables["top_words"]
    assert len(table) == rank * k and set(table["layer"]) == {2}
    comps, _ = layer_components(llama.anatomy.mlp_down_weight(2))
    vectors = word_vectors(llama, WORDS, "unembed")
    for c in range(rank):
        scored = []
        for word, vec in zip(WORDS, vectors):
            cos = float(torch.dot(comps[c], vec) / (comps[c].norm() * vec.norm()))
            scored.append((abs(cos), cos, word))
        scored.sort(reverse=True)
        got = table[table["component"] == c].sort_values("rank")
        assert list(got["word"]) == [w for _, _, w in scored[:k]]
        np.testing.assert_allclose(got["cosine"].to_numpy(), [s for _, s, _ in scored[:k]],
                                   atol=1e-5)
        assert list(got["rank"]) == list(range(1, k + 1))


def test_centering_matters():
    torch.manual_seed(0)
    n, d = 200, 16
    noise = torch.randn(n, d) * 0.1
    noise[:, 0] *= 50                                       # the neurons vary along e_0
    mean_row = torch.zeros(d)
    mean_row[1] = 100.0                                     # all neurons share a huge e_1 part
    comps, explained = layer_components(noise + mean_row)
    assert abs(float(comps[0, 0])) > 0.99                   # variance direction, not the mean
    assert abs(float(comps[0, 1])) < 0.05
    uncentred = torch.linalg.svd(noise + mean_row, full_matrices=False).Vh
    assert abs(float(uncentred[0, 1])) > 0.99               # without centring the mean wins
    assert float(explained[0]) > 0.9


def test_component_top_words_keeps_sign():
    comps = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    words = unit_rows(torch.tensor([[-3.0, 0.1], [0.5, 0.5], [0.1, 2.0]]))
    idx, cos = component_top_words(comps, words, 2)
    assert idx.tolist() == [[0, 1], [2, 1]]
    assert float(cos[0, 0]) < -0.99 and float(cos[1, 0]) > 0.99


def _orthonormal_rows(r, d, seed):
    q, _ = torch.linalg.qr(torch.randn(d, r, generator=torch.Generator().manual_seed(seed)))
    return q.T.contiguous()                                                   # [r, d]


@pytest.mark.parametrize("seed, block, n_words", [(0, 1, 3000), (1, 8, 3001), (2, 32, 9000),
                                                  (3, 8, 2048)])
def test_screened_top_words_equal_plain_float32(seed, block, n_words):
    gen = torch.Generator().manual_seed(100 + seed)
    words = unit_rows(torch.randn(n_words, 64, generator=gen))
    comps = _orthonormal_rows(40, 64, seed)
    if seed == 3:            # the best words of component 0 fall into the same few groups
        best_first = (words @ comps[0]).abs().argsort(descending=True)
        groups = -(-n_words // block)
        slot = torch.arange(n_words)
        order = torch.empty_like(best_first)
        order[(slot % block) * groups + slot // block] = best_first
        words = words[order]
    plain = CosineTopWords(words, screen=False)
    screened = CosineTopWords(words, screen=True, candidates=64, block=block)
    assert len(screened.coarse) % block == 0 and len(screened.coarse) - n_words < block
    assert screened.coarse is not None and plain.coarse is None
    idx_p, cos_p = plain(comps, 20)
    idx_s, cos_s = screened(comps, 20)
    assert idx_s.shape == (40, 20)
    torch.testing.assert_close(cos_s, cos_p, atol=1e-6, rtol=0)
    # same words, except where two |cos| agree to float32 rounding
    gaps = (cos_p.abs()[:, :-1] - cos_p.abs()[:, 1:]).abs().min(dim=1).values
    distinct = gaps > 1e-6
    assert distinct.sum() > 30 and torch.equal(idx_s[distinct], idx_p[distinct])
    exact = (unit_rows(comps) @ words.T).gather(1, idx_s)
    torch.testing.assert_close(cos_s, exact, atol=1e-6, rtol=0)


def test_screen_falls_back_where_it_cannot_prove_the_top_words():
    base = unit_rows(torch.randn(25, 32, generator=torch.Generator().manual_seed(5)))
    words = base.repeat(200, 1)                                 # 5000 words, 200 copies of each
    comps = _orthonormal_rows(10, 32, 6)
    screened = CosineTopWords(words, screen=True, candidates=60)
    _, cos_s = screened(comps, 30)
    _, cos_p = CosineTopWords(words, screen=False)(comps, 30)
    assert screened.recomputed == 10                           # ties everywhere: nothing proved
    torch.testing.assert_close(cos_s, cos_p, atol=1e-6, rtol=0)


def test_screen_tries_more_candidates_before_the_full_product(monkeypatch):
    """Component 0's best 80 words are near-copies of one vector (their coarse |cos| agree to
    bfloat16 rounding), so 64 candidates prove nothing; 512 do, without the float32 product."""
    gen = torch.Generator().manual_seed(11)
    words = torch.randn(6000, 32, generator=gen)
    comps = _orthonormal_rows(6, 32, 12)
    words[:80] = comps[0] * 3 + 1e-3 * torch.randn(80, 32, generator=gen)
    words = unit_rows(words)
    screened = CosineTopWords(words, screen=True, candidates=64, block=4)
    plain_rows = []
    full = screened._plain
    monkeypatch.setattr(screened, "_plain", lambda c, k: plain_rows.append(len(c)) or full(c, k))
    idx_s, cos_s = screened(comps, 30)
    idx_p, cos_p = CosineTopWords(words, screen=False)(comps, 30)
    assert screened.recomputed == 1 and plain_rows == []           # component 0, counted once
    torch.testing.assert_close(cos_s, cos_p, atol=1e-6, rtol=0)
    assert set(idx_s[0].tolist()) <= set(range(80))


def test_bfloat16_error_bound_holds_for_every_pair():
    gen = torch.Generator().manual_seed(7)
    words = unit_rows(torch.randn(2000, 96, generator=gen))
    comps = unit_rows(torch.randn(50, 96, generator=gen))
    screen = CosineTopWords(words, screen=True)
    coarse = (comps.bfloat16() @ screen.coarse[:len(words)].T).float()
    comp_error = (comps - comps.bfloat16().float()).norm(dim=1, keepdim=True)
    exact = comps.double() @ words.double().T
    # |true| <= |coarse| / (1 - 2^-8) + the rounding terms, as CosineTopWords assumes
    bound = (coarse.abs() / (1 - 2.0 ** -8) + comp_error * screen.word_norm + screen.word_error
             + comp_error * screen.word_error + 96 * 2.0 ** -23)
    assert bool((exact.abs() <= bound.double()).all())
    assert 0 < screen.word_error < 0.01


def test_principal_angles_known_cases():
    eye = torch.eye(5)
    torch.testing.assert_close(principal_angles(eye[:2], eye[:2]),
                               torch.zeros(2, dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(principal_angles(eye[:2], eye[2:4]),
                               torch.full((2,), 90.0, dtype=torch.float64), atol=1e-6, rtol=0)
    t = np.radians(30)
    a = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    b = torch.tensor([[1.0, 0.0, 0.0], [0.0, np.cos(t), np.sin(t)]])
    np.testing.assert_allclose(principal_angles(a, b).numpy(), [0.0, 30.0], atol=1e-6)
    line = torch.tensor([[np.cos(t), np.sin(t)]])
    np.testing.assert_allclose(principal_angles(torch.tensor([[2.0, 0.0]]), line).numpy(), [30.0],
                               atol=1e-6)


def test_principal_angles_basis_invariant_and_match_scipy():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4, 12, generator=g, dtype=torch.float64)
    mixed = torch.randn(4, 4, generator=g, dtype=torch.float64) @ a   # same subspace, new basis
    assert float(principal_angles(a, mixed).max()) < 1e-5
    b = torch.randn(3, 12, generator=g, dtype=torch.float64)
    expected = np.degrees(scipy.linalg.subspace_angles(a.numpy().T, b.numpy().T))[::-1]
    np.testing.assert_allclose(principal_angles(a, b).numpy(), expected, atol=1e-8)
    with pytest.raises(TunescopeError):
        principal_angles(a, torch.randn(2, 7))


def test_layer_principal_angles(llama):
    same = layer_principal_angles(llama, llama, k=5)
    assert list(same.columns) == ["layer", "index", "angle_degrees"]
    assert len(same) == 3 * 5 and same["angle_degrees"].max() < 1e-3
    other = layer_principal_angles(llama, tiny_lm("llama", seed=1), layers=[0, 2], k=5)
    assert set(other["layer"]) == {0, 2}
    assert other["angle_degrees"].between(0, 90).all() and other["angle_degrees"].max() > 10
    with pytest.raises(TunescopeError, match="d_model"):
        layer_principal_angles(llama, tiny_lm("gemma3"))
    with pytest.raises(TunescopeError, match="layers"):
        layer_principal_angles(llama, llama, layers=[7])


def test_offline_labels_and_result_round_trip(llama, tmp_path):
    config = FFNConceptsConfig(rank=3, top_words=8, layers=(0, 2), runs=2)
    res = ffn_concepts(llama, WORDS + WORDS[:3], config)            # duplicates are dropped
    labels = res.tables["labels"]
    assert len(labels) == 2 * 3 * 2 and set(labels["run"]) == {0, 1}
    assert set(labels["category"]) <= set(CATEGORIES) and set(labels["level"]) <= set(LEVELS)
    first, second = (labels[labels["run"] == r].reset_index(drop=True) for r in (0, 1))
    assert first[["category", "level"]].equals(second[["category", "level"]])
    assert res.summary["n_words"] == len(WORDS) and res.summary["labeller"] == "offline"
    assert res.provenance["config"]["rank"] == 3
    assert Result.load(res.save(tmp_path / "r")) == res


def test_rank_clipped_and_errors(llama):
    res = ffn_concepts(llama, WORDS, FFNConceptsConfig(rank=1000, top_words=3, layers=(1,),
                                                       labeller="none"))
    assert res.tables["top_words"]["component"].nunique() == 48
    with pytest.raises(TunescopeError, match="layers"):
        ffn_concepts(llama, WORDS, FFNConceptsConfig(layers=(9,)))
    with pytest.raises(TunescopeError, match="labeller"):
        ffn_concepts(llama, WORDS, FFNConceptsConfig(labeller="gpt"))
    with pytest.raises(TunescopeError):
        ffn_concepts(llama, [], FFNConceptsConfig())


@pytest.mark.integration
def test_real_model_components(smollm):
    res = ffn_concepts(smollm, WORDS, FFNConceptsConfig(rank=10, top_words=5, layers=(0, 29)))
    comps = res.tables["components"]
    assert comps.groupby("layer")["explained_variance"].sum().to_numpy() == pytest.approx(1.0)
    assert len(comps) == 2 * smollm.anatomy.d_model
    assert len(res.tables["top_words"]) == 2 * 10 * 5
    assert len(res.tables["labels"]) == 2 * 10 * 5
