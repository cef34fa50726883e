"""attention_heads (docs/methods.md#w2, after Wu et al. 2024): attention heads read as word-word pairs.

For each layer and head, with the pre-attention norm's gain folded into W_Q and W_K and
key heads repeated for grouped-query attention, the vocabulary's words (input-embedding rows
averaged over each word's tokens, E: [V, d_model]) give Hq = E W_Q[h] and Hk = E W_K[h]
([V, d_head]; RoPE, biases and scaling ignored). The head's dimensions are ranked by
sum(Hq^2 + Hk^2). For dimension i the top-K words by |Hq[:, i]| and by |Hk[:, i]| form candidate
pairs (a, b); a pair is kept when the two words are semantically related (cosine similarity
above mean + 1.96 std of *each* word's similarities to the 3,000 most frequent words) and
Hq[a, i] * Hk[b, i] > 0. A head's knowledge: the unordered, lower-cased word pairs {a, b}
found in more than one distinct dimension of the head (a pair kept as (a, b) in one dimension
and as (b, a) or with other capitalisation in another counts as found in two dimensions; found
twice in one dimension, it counts once there).

Everything is vectorised over heads and dimensions: one ``torch.topk`` per layer for all of
them, the similarity filter as batched matrix products.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from tunescope.analyses.helpers.word_vectors import unit_rows, word_vectors
from tunescope.analyses.registry import register
from tunescope.analyses.skeleton import AnalysisRun
from tunescope.common.progress import progress
from tunescope.errors import TunescopeError
from tunescope.models.lm import LM
from tunescope.result import Result, fingerprint


@dataclass(frozen=True)
class AttentionHeadsConfig:
    """W2 settings: ``top_k`` words per dimension and side; ``baseline`` most frequent words
    for the similarity thresholds (z = 1.96 std above the mean); ``dims_per_head``: keep only
    the highest-ranked dimensions of each head (None: all); ``layers``: None for all;
    ``similarity``: ``"default"`` (the offline sentence-embedding model: one fixed,
    model-independent similarity for every model of a comparison, as the study's GloVe was;
    an error when it is not installed), ``"model"`` (each model's own input embeddings: base
    and tuned are then filtered by different similarities), or a path to GloVe-style vectors.
    The Result records which (``summary["similarity"]``)."""

    top_k: int = 100
    baseline: int = 3000
    z: float = 1.96
    dims_per_head: int | None = None
    layers: tuple[int, ...] | None = None
    similarity: str = "default"


@dataclass
class HeadPairs:
    """Kept pairs of one layer: index arrays of equal length (head, dimension, dimension rank,
    query word, key word) and the pair's similarity."""

    head: np.ndarray
    dim: np.ndarray
    dim_rank: np.ndarray
    word_q: np.ndarray
    word_k: np.ndarray
    similarity: np.ndarray


def similarity_thresholds(unit: torch.Tensor, baseline: int, z: float = 1.96,
                          chunk: int = 4096) -> torch.Tensor:
    """Per word [V]: mean + z * std of its cosine similarities to the ``baseline`` first
    (most frequent) words; ``unit``: [V, e] unit vectors. The std is the population std
    (ddof 0, ``numpy.std``'s default, as the study's code and
    :func:`tunescope.analyses.helpers.similarity.semantic_filter_threshold`)."""
    base = unit[:baseline]
    out = torch.empty(unit.shape[0])
    for start in range(0, unit.shape[0], chunk):
        sims = unit[start:start + chunk] @ base.T
        out[start:start + chunk] = sims.mean(1) + z * sims.std(1, correction=0)
    return out


def head_projections(lm: LM, layer: int, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Hq [n_heads, V, d_head] and Hk [n_heads, V, d_head] (key heads repeated for GQA) of the
    word embeddings [V, d_model], with the pre-attention norm gain folded in."""
    a = lm.anatomy
    w = a.head_weights(layer)
    gain = a.ln_attn_gain(layer).float()
    x = (embeddings * gain).to(w.W_Q.dtype)
    hq = torch.einsum("vm,hmd->hvd", x, w.W_Q).float()
    hk = torch.einsum("vm,hmd->hvd", x, w.W_K).float()
    return hq, hk.repeat_interleave(a.n_heads // a.n_kv_heads, dim=0)


def layer_pairs(hq: torch.Tensor, hk: torch.Tensor, unit: torch.Tensor, thresholds: torch.Tensor,
                top_k: int, dims_per_head: int | None = None) -> HeadPairs:
    """The kept pairs of every head and dimension of one layer (see module docstring).

    ``hq``, ``hk``: [H, V, d]; ``unit``: [V, e] unit word vectors; ``thresholds``: [V]."""
    H, V, d = hq.shape
    order = (hq.pow(2) + hk.pow(2)).sum(1).argsort(dim=1, descending=True)   # [H, d] dims by rank
    if dims_per_head is not None:
        order = order[:, :dims_per_head]
    D = order.shape[1]
    q_sel = hq.gather(2, order[:, None, :].expand(H, V, D))                    # [H, V, D]
    k_sel = hk.gather(2, order[:, None, :].expand(H, V, D))
    k = min(top_k, V)
    qi = q_sel.abs().topk(k, dim=1).indices.permute(0, 2, 1)                   # [H, D, K]
    ki = k_sel.abs().topk(k, dim=1).indices.permute(0, 2, 1)
    qv = q_sel.permute(0, 2, 1).gather(2, qi)                                  # [H, D, K] values
    kv = k_sel.permute(0, 2, 1).gather(2, ki)
    sims = torch.einsum("hdae,hdbe->hdab", unit[qi], unit[ki])                 # [H, D, K, K]
    keep = ((sims > thresholds[qi][..., :, None]) & (sims > thresholds[ki][..., None, :])
            & (qv[..., :, None] * kv[..., None, :] > 0) & (qi[..., :, None] != ki[..., None, :]))
    h, di, a, b = keep.nonzero(as_tuple=True)
    return HeadPairs(head=h.numpy(), dim=order[h, di].numpy(), dim_rank=di.numpy(),
                     word_q=qi[h, di, a].numpy(), word_k=ki[h, di, b].numpy(),
                     similarity=sims[h, di, a, b].numpy())


def _similarity_vectors(lm: LM, words: Sequence[str], spec: str) -> tuple[torch.Tensor, str]:
    if spec == "model":
        return unit_rows(word_vectors(lm, words, "embed")), "model embeddings"
    from tunescope.analyses.helpers import similarity as sim_module
    if spec == "default":
        source = sim_module.default_similarity()
    else:
        source = sim_module.GloveSimilarity(spec)
    return unit_rows(source.vectors(list(words)).float()), source.name


def knowledge_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    """Each head's knowledge from a ``pairs`` table (columns layer, head, dim, word_q, word_k,
    similarity): the unordered, lower-cased pairs {word_a, word_b} (word_a <= word_b) kept in
    more than one distinct dimension of the head. Columns: layer, head, word_a, word_b,
    n_dims (distinct dimensions of the head where the pair was kept), similarity."""
    cols = ["layer", "head", "word_a", "word_b", "n_dims", "similarity"]
    if not len(pairs):
        return pd.DataFrame(columns=cols)
    q = pairs["word_q"].astype(str).str.lower().to_numpy()
    k = pairs["word_k"].astype(str).str.lower().to_numpy()
    swap = q > k
    frame = pd.DataFrame({"layer": pairs["layer"].to_numpy(), "head": pairs["head"].to_numpy(),
                          "word_a": np.where(swap, k, q), "word_b": np.where(swap, q, k),
                          "dim": pairs["dim"].to_numpy(),
                          "similarity": pairs["similarity"].to_numpy()
                          if "similarity" in pairs else np.nan})
    knowledge = (frame.groupby(["layer", "head", "word_a", "word_b"], sort=True)
                 .agg(n_dims=("dim", "nunique"), similarity=("similarity", "max")).reset_index())
    return knowledge[knowledge["n_dims"] > 1].reset_index(drop=True)[cols]


@register("attention_heads", AttentionHeadsConfig, dataset="vocabulary")
def attention_heads(lm: LM, words: Sequence[str],
                    config: AttentionHeadsConfig = AttentionHeadsConfig(),
                    similarity_vectors: Callable | None = None) -> Result:
    """Attention heads as word-word pairs, per layer, head and dimension (W2).

    Tables: ``pairs`` (every kept ordered pair: layer, head, dim, dim_rank, word_q, word_k,
    similarity), ``knowledge`` (:func:`knowledge_pairs`: unordered lower-cased pairs found in
    more than one dimension of a head), ``heads`` (layer, head, n_pairs = its knowledge
    pairs). Summary: ``n_pairs`` (rows of ``pairs``), ``n_knowledge_pairs`` (rows of
    ``knowledge``), ``heads_with_knowledge`` (heads with at least one knowledge pair).

    ``words``: the vocabulary, most frequent first (its first ``config.baseline`` words are the
    similarity baseline). ``similarity_vectors(words) -> [V, e]`` overrides ``config.similarity``.
    """
    run = AnalysisRun("attention_heads", lm, config)
    words = list(dict.fromkeys(words))
    if len(words) < max(config.top_k, 2):
        raise TunescopeError(f"vocabulary of {len(words)} words is smaller than top_k={config.top_k}")
    n_layers = lm.anatomy.n_layers
    layers = list(range(n_layers)) if config.layers is None else list(config.layers)
    if any(not 0 <= l < n_layers for l in layers):
        raise TunescopeError(f"layers must lie in 0..{n_layers - 1}, got {layers}")
    if similarity_vectors is not None:
        unit, sim_name = unit_rows(similarity_vectors(words).float()), "given"
    else:
        unit, sim_name = _similarity_vectors(lm, words, config.similarity)
    thresholds = similarity_thresholds(unit, min(config.baseline, len(words)), config.z)
    embeddings = word_vectors(lm, words, "embed")
    parts = []
    with torch.no_grad(), progress(len(layers), f"{lm.name}: attention heads") as bar:
        for layer in layers:
            hq, hk = head_projections(lm, layer, embeddings)
            p = layer_pairs(hq, hk, unit, thresholds, config.top_k, config.dims_per_head)
            parts.append(pd.DataFrame({"layer": layer, "head": p.head, "dim": p.dim,
                                       "dim_rank": p.dim_rank, "word_q": p.word_q,
                                       "word_k": p.word_k, "similarity": p.similarity}))
            bar.advance()
    pairs = pd.concat(parts, ignore_index=True)
    vocab = np.array(words, dtype=object)
    pairs["word_q"] = vocab[pairs["word_q"].to_numpy()]
    pairs["word_k"] = vocab[pairs["word_k"].to_numpy()]
    knowledge = knowledge_pairs(pairs)
    per_head = (knowledge.groupby(["layer", "head"]).size().rename("n_pairs").reset_index())
    summary = {"n_words": len(words), "n_layers": len(layers), "similarity": sim_name,
               "n_pairs": len(pairs), "n_knowledge_pairs": len(knowledge),
               "heads_with_knowledge": len(per_head)}
    dataset = {"kind": "vocabulary", "size": len(words), "fingerprint": fingerprint(words)}
    return run.result({"pairs": pairs, "knowledge": knowledge, "heads": per_head}, summary,
                      dataset)


def layer_pairs_reference(hq: torch.Tensor, hk: torch.Tensor, unit: torch.Tensor,
                          thresholds: torch.Tensor, top_k: int, heads=None, dims=None
                          ) -> set[tuple[int, int, int, int]]:
    """The same computation as :func:`layer_pairs`, one head and dimension at a time in Python
    (the straightforward way; tests and the benchmark compare against it). Returns the set of
    (head, dimension, query word, key word) kept, for the given heads and dimension ranks."""
    H, V, d = hq.shape
    out = set()
    for h in (range(H) if heads is None else heads):
        order = (hq[h].pow(2) + hk[h].pow(2)).sum(0).argsort(descending=True)
        for r in (range(d) if dims is None else dims):
            i = int(order[r])
            q_top = hq[h, :, i].abs().topk(min(top_k, V)).indices.tolist()
            k_top = hk[h, :, i].abs().topk(min(top_k, V)).indices.tolist()
            for a in q_top:
                for b in k_top:
                    if a == b:
                        continue
                    s = float(unit[a] @ unit[b])
                    if s > thresholds[a] and s > thresholds[b] and hq[h, a, i] * hk[h, b, i] > 0:
                        out.add((h, i, a, b))
    return out
