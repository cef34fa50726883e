"""W2 (Wu et al. 2024; METHODS.md W2) against independent references written here from the
definitions in plain numpy / Python, over the same Hq / Hk matrices and word lists; tunescope's
counting helpers are never called for the checked quantity.

- Knowledge: per head, the unordered, lower-cased word pairs {a, b} kept in more than one
  distinct dimension (pair kept in dimension i: a among the top-K words by |Hq[:, i]|, b among
  the top-K by |Hk[:, i]|, a != b, cos(a, b) above mean + z * std (numpy, ddof 0) of each word's
  cosines to the baseline words, Hq[a, i] * Hk[b, i] > 0).
- Base against tuned: unit = head (matched by layer and index); a word's count in a head =
  the head's knowledge pairs containing it; per depth group and word, the share of changed heads
  where the tuned count is higher; instruction against general verbs, Welch's t.
- Word vectors: the mean of the word's embedding rows, a leading token that decodes to
  whitespace only dropped when the word has other tokens.
"""

from collections import Counter, defaultdict

import numpy as np
import pytest
import torch
from scipy import stats
from tiny import CORPUS, tiny_lm

from tunescope.analyses import get
from tunescope.analyses.attention_heads import (
    attention_heads,
    head_projections,
    similarity_thresholds,
)
from tunescope.analyses.helpers.similarity import semantic_filter_threshold
from tunescope.analyses.helpers.word_vectors import word_vectors
from tunescope.compare import compare_results
from tunescope.compare.verb_share import compare_heads
from tunescope.data.verbs import INSTRUCTION_VERBS, general_verbs

# mixed case on purpose ("The" / "the", "Paris" / "paris"), verbs of both classes
WORDS = list(dict.fromkeys(
    [w.strip(".,:!?") for line in CORPUS for w in line.split()]
    + ["the", "paris", "write", "give", "find", "make", "explain", "tell", "create", "describe",
       "go", "run", "take", "see", "know", "come", "look", "want", "use", "think", "get"]))
WORDS = [w for w in WORDS if w]
TOP_K, BASELINE, Z = 8, 20, 0.5


def _sim_vectors(words, seed=0):
    rng = np.random.default_rng(seed)
    table = {w: rng.normal(size=4) for w in WORDS}
    return np.stack([table[w] for w in words])


def _config():
    return get("attention_heads").make_config(top_k=TOP_K, baseline=BASELINE, z=Z)


def _run(lm):
    return attention_heads(lm, WORDS, _config(),
                           similarity_vectors=lambda w: torch.tensor(_sim_vectors(w)))


def _reference_knowledge(lm, ordered=False):
    """{(layer, head, a, b): n distinct dims} with more than one dimension; ``ordered``: the
    old rule (ordered (q, k) pairs, case kept), only to show the test discriminates."""
    s = _sim_vectors(WORDS)
    unit = s / np.linalg.norm(s, axis=1, keepdims=True)
    base = unit @ unit[:BASELINE].T
    thr = base.mean(1) + Z * base.std(1)
    emb = word_vectors(lm, WORDS, "embed")
    out = {}
    for layer in range(lm.anatomy.n_layers):
        with torch.no_grad():
            hq, hk = (t.numpy().astype(np.float64) for t in head_projections(lm, layer, emb))
        for h in range(hq.shape[0]):
            dims = defaultdict(set)
            for i in range(hq.shape[2]):
                q_top = np.argsort(-np.abs(hq[h, :, i]), kind="stable")[:TOP_K]
                k_top = np.argsort(-np.abs(hk[h, :, i]), kind="stable")[:TOP_K]
                for a in q_top:
                    for b in k_top:
                        cos = float(unit[a] @ unit[b])
                        if (a != b and cos > thr[a] and cos > thr[b]
                                and hq[h, a, i] * hk[h, b, i] > 0):
                            if ordered:
                                dims[(WORDS[a], WORDS[b])].add(i)
                            else:
                                dims[tuple(sorted((WORDS[a].lower(), WORDS[b].lower())))].add(i)
            out.update({(layer, h, *p): len(d) for p, d in dims.items() if len(d) > 1})
    return out


@pytest.mark.parametrize("family", ["llama", "gemma3"])
def test_knowledge_is_unordered_lowercased_pairs_in_several_dims(family):
    lm = tiny_lm(family)
    res = _run(lm)
    ref = _reference_knowledge(lm)
    assert len(ref) > 0 and res.summary["n_knowledge_pairs"] == len(ref)
    assert res.summary["heads_with_knowledge"] == len({(l, h) for l, h, *_ in ref})
    k = res.tables["knowledge"]
    got = {(int(r.layer), int(r.head), r.word_a, r.word_b): int(r.n_dims)
           for r in k.itertuples()}
    assert got == ref
    heads = res.tables["heads"]
    assert dict(zip(zip(heads["layer"], heads["head"]), heads["n_pairs"])) == Counter(
        (l, h) for l, h, *_ in ref)


def test_the_old_ordered_rule_counts_differently():
    """The reference above discriminates: the ordered, case-kept count differs."""
    lm = tiny_lm("llama")
    assert len(_reference_knowledge(lm, ordered=True)) != len(_reference_knowledge(lm))


def test_similarity_threshold_is_population_std():
    rng = np.random.default_rng(3)
    s = rng.normal(size=(30, 5))
    unit = s / np.linalg.norm(s, axis=1, keepdims=True)
    sims = unit @ unit[:10].T
    expected = sims.mean(1) + 1.96 * sims.std(1)          # numpy default: ddof 0
    got = similarity_thresholds(torch.tensor(unit, dtype=torch.float32), baseline=10, z=1.96)
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(semantic_filter_threshold(sims).numpy(), expected, atol=1e-6)


def test_word_vectors_drop_a_leading_lone_space_token():
    lm = tiny_lm("llama")
    tok, weight = lm.tokenizer, lm.anatomy.embed.weight.detach().numpy()
    words = ["zebra", "quux", "capital", "Paris", "x"]
    expected = []
    for w in words:
        ids = tok(" " + w, add_special_tokens=False)["input_ids"]
        if len(ids) > 1 and tok.decode(ids[:1]).strip() == "":
            ids = ids[1:]
        expected.append(weight[ids].mean(0))
    assert sum(tok(" " + w, add_special_tokens=False)["input_ids"][0]
               == tok.convert_tokens_to_ids("\u0120") for w in words) >= 2
    np.testing.assert_allclose(word_vectors(lm, words).numpy(), np.stack(expected), atol=1e-6)


def _head_counts(knowledge: dict, words: set) -> dict:
    """{(layer, head): Counter of each word's knowledge pairs}."""
    out = defaultdict(Counter)
    for layer, head, a, b in knowledge:
        for w in (a, b):
            if w in words:
                out[(layer, head)][w] += 1
    return out


def _reference_shares(base_k, tuned_k, n_layers, n_heads, instruction, general, n_groups=4):
    words = set(instruction) | set(general)
    cb, ct = _head_counts(base_k, words), _head_counts(tuned_k, words)
    shares = {}
    for g in range(n_groups):
        heads = [(l, h) for l in range(n_layers) if min(l * n_groups // n_layers, n_groups - 1) == g
                 for h in range(n_heads)]
        for w in words:
            changed = [(cb[u][w], ct[u][w]) for u in heads if cb[u][w] != ct[u][w]]
            if changed:
                shares[(w, g)] = np.mean([t > b for b, t in changed])
    return shares


def test_compare_heads_matches_reference():
    base_lm, tuned_lm = tiny_lm("llama", seed=0), tiny_lm("llama", seed=1)
    base, tuned = _run(base_lm), _run(tuned_lm)
    base_k, tuned_k = _reference_knowledge(base_lm), _reference_knowledge(tuned_lm)
    a = base_lm.anatomy
    n_layers, n_heads = a.n_layers, a.n_heads
    seen = {w for k in (base_k, tuned_k) for key in k for w in key[2:]}
    instruction = [v for v in INSTRUCTION_VERBS if v in seen]
    general = [v for v in general_verbs() if v in seen]
    assert instruction and general
    ref = _reference_shares(base_k, tuned_k, n_layers, n_heads, instruction, general)
    shape = {"n_layers": n_layers, "n_heads": n_heads}
    shares, tests, method = compare_heads(base.tables["knowledge"], tuned.tables["knowledge"],
                                          shape, shape, instruction, general)
    assert method == "joined"
    got = {(r.word, int(r.group)): r.share_more_after_tuning for r in shares.itertuples()}
    assert got.keys() == ref.keys() and len(ref) > 0
    for key_, value in ref.items():
        assert got[key_] == pytest.approx(value)
    table = compare_results(base, tuned, n_boot=50)
    table = table[table["metric"] == "share_more_after_tuning"].set_index("key")
    for g in range(4):
        ins = [v for (w, gg), v in ref.items() if gg == g and w in instruction]
        gen = [v for (w, gg), v in ref.items() if gg == g and w in general]
        row = table.loc[f"group={g}"]
        assert (row["n_tuned"], row["n_base"]) == (len(ins), len(gen))
        if ins:
            assert row["tuned"] == pytest.approx(np.mean(ins))
        if gen:
            assert row["base"] == pytest.approx(np.mean(gen))
        if len(ins) >= 2 and len(gen) >= 2 and np.std(ins) + np.std(gen) > 0:
            t = stats.ttest_ind(ins, gen, equal_var=False, alternative="greater")
            assert row["statistic"] == pytest.approx(t.statistic)
            assert row["p_value"] == pytest.approx(t.pvalue)
