"""Word vectors read off a model's own matrices (W2 uses input embeddings, W3 unembeddings).

A word's vector is the mean of the matrix rows of its tokens, the word tokenised as it appears
inside a sentence (with a leading space: " write"). When that tokenisation starts with a token
that decodes to whitespace only (a lone space token, "Ġ" or "▁", before the word's own tokens)
and the word has other tokens, that token is dropped: it is no part of the word. Words are kept
in the given order.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tunescope.models.lm import LM


def word_token_ids(lm: LM, words: Sequence[str]) -> list[list[int]]:
    """Token ids of each word as it appears after a space (no special tokens), without a
    leading token that decodes to whitespace only when the word has other tokens.

    A fast tokenizer's backend encodes the batch directly, without character offsets where it
    can (``encode_batch_fast``); the ids are the same as the tokenizer's own call, which
    spends most of its time building per-word encodings."""
    texts = [" " + w for w in words]
    backend = getattr(lm.tokenizer, "backend_tokenizer", None)
    if backend is not None:
        encode = getattr(backend, "encode_batch_fast", backend.encode_batch)
        ids = [list(e.ids) for e in encode(texts, add_special_tokens=False)]
    else:
        ids = [list(s) for s in lm.tokenizer(texts, add_special_tokens=False)["input_ids"]]
    blank = {t: not lm.tokenizer.decode([t]).strip()
             for t in {seq[0] for seq in ids if len(seq) > 1}}
    return [seq[1:] if len(seq) > 1 and blank[seq[0]] else seq for seq in ids]


@torch.no_grad()
def word_vectors(lm: LM, words: Sequence[str], matrix: str = "embed",
                 ids: list[list[int]] | None = None) -> torch.Tensor:
    """Vectors [len(words), d_model] (float32): the mean of each word's token rows in the input
    embedding (``matrix="embed"``, as the model reads the word; Gemma's embedding scale
    included) or in the unembedding (``"unembed"``, as the model writes it). ``ids``: the
    words' :func:`word_token_ids` when already computed."""
    if matrix == "embed":
        weight = lm.anatomy.embed.weight
        scale = getattr(lm.anatomy.embed, "embed_scale", None)
    elif matrix == "unembed":
        weight, scale = lm.anatomy.unembed.weight, None
    else:
        raise ValueError(f"matrix must be 'embed' or 'unembed', got {matrix!r}")
    ids = word_token_ids(lm, words) if ids is None else ids
    flat = torch.tensor([t for seq in ids for t in seq], device=weight.device)
    owner = torch.repeat_interleave(torch.arange(len(ids)), torch.tensor([len(s) for s in ids]))
    sums = torch.zeros((len(ids), weight.shape[1]), dtype=torch.float32)
    sums.index_add_(0, owner, weight[flat].float().cpu())
    vectors = sums / torch.tensor([max(len(s), 1) for s in ids], dtype=torch.float32)[:, None]
    if scale is not None:
        vectors = vectors * float(scale)
    return vectors


def unit_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit length (zero rows stay zero)."""
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
