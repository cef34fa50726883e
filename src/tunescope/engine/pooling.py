"""Pooled residual-stream representations of texts, all wanted layers from one forward pass.

Layers are numbered as Hugging Face's hidden states: 0 is the embedding output (the residual
stream entering block 0), ``l + 1`` the output of block ``l``, so ``n_layers`` is the last
block's output *before* the final norm. One more index, ``n_layers + 1`` (:func:`normed_layer`),
is that same output passed through the model's final norm (what the unembedding reads; Hugging
Face's last hidden state in Llama/Gemma-style models). Poolings:

* ``"mean"``: the average over the sequence's real tokens, leaving out the first position only
  where it holds a special token (the tokenizer's BOS, or any id in ``all_special_ids``): that
  token is the attention sink whose residual vector is one to two orders of magnitude larger
  than the others' from the early layers on ("massive activations"); it would swamp the mean
  and make every sentence look alike. A real word at position 0 (a tokenizer that adds no BOS,
  e.g. SmolLM2's) is kept, so every model averages over its sentence's words and nothing
  else. A one-token sequence keeps its only token.
* ``"mean_all"``: the average over every real token, first position included.
* ``"last"``: the last token.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tunescope.common.progress import progress
from tunescope.engine.batching import (
    BatchSizer,
    default_batch_size,
    left_pad,
    length_buckets,
)
from tunescope.errors import TunescopeError
from tunescope.models.hooks import trace
from tunescope.models.lm import LM

POOLINGS = ("mean", "mean_all", "last")


def check_poolings(poolings: Sequence[str]) -> None:
    """Raise a clear error for an unknown, empty or repeated pooling name."""
    if not poolings:
        raise TunescopeError(f"no pooling given; use any of {', '.join(POOLINGS)}")
    for p in poolings:
        if p not in POOLINGS:
            raise TunescopeError(f"unknown pooling {p!r}; use any of {', '.join(POOLINGS)}")
    if len(set(poolings)) != len(poolings):
        raise TunescopeError(f"pooling listed twice: {', '.join(poolings)}")


def normed_layer(lm: LM) -> int:
    """The layer index ``n_layers + 1``: the last block's output through the final norm."""
    return lm.anatomy.n_layers + 1


def special_first(tokenizer, ids: Sequence[Sequence[int]]) -> list[bool]:
    """Per sequence: True when its first token is special (``tokenizer.bos_token_id`` or any id
    in ``tokenizer.all_special_ids``): the position ``"mean"`` pooling leaves out."""
    special = set(getattr(tokenizer, "all_special_ids", None) or [])
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is not None:
        special.add(bos)
    return [len(s) > 0 and int(s[0]) in special for s in ids]


def pooling_weights(attention_mask: torch.Tensor, pooling: str,
                    drop_first: torch.Tensor | Sequence[bool] | None = None) -> torch.Tensor:
    """Weights [B, T, 1] (float, each row sums to 1) that pool a left-padded batch.

    Args:
        attention_mask: [B, T], 1 on real tokens (left padding).
        pooling: one of :data:`POOLINGS`.
        drop_first: [B] bools, True where the row's first real token is special
            (:func:`special_first`); ``"mean"`` gives it weight 0 when the row has another
            token. None: no row starts with a special token (nothing is left out).
    """
    mask = attention_mask.float()
    if pooling == "last":
        weights = torch.zeros_like(mask)
        weights[:, -1] = 1.0
    else:
        weights = mask.clone()
        if pooling == "mean" and drop_first is not None:
            drop = torch.as_tensor(drop_first, dtype=torch.bool, device=mask.device)
            lengths = mask.sum(1)
            first = mask.shape[1] - lengths.long()          # first real position of each row
            rows = torch.arange(mask.shape[0], device=mask.device)
            weights[rows, first] = torch.where(drop & (lengths > 1), 0.0, 1.0)
    return (weights / weights.sum(1, keepdim=True))[..., None]


@torch.inference_mode()
def pooled_states(lm: LM, ids: Sequence[Sequence[int]], layers: Sequence[int] | None = None,
                  poolings: Sequence[str] = ("mean", "last"), batch_size: int | None = None,
                  desc: str | None = None) -> dict[str, torch.Tensor]:
    """Pool the residual stream of each token sequence at the given layers.

    One forward pass per length-bucketed, left-padded batch records just the wanted layers and
    stops after the deepest block it needs (no logits); vectors are pooled inside the batch, so
    only the pooled ones are kept. ``"mean"`` leaves out a sequence's first token where it is
    special (:func:`special_first`, read from ``lm.tokenizer``).

    Args:
        ids: token ids of each sequence (special tokens included).
        layers: indices in 0..n_layers + 1 (default 0..n_layers, the hidden states without the
            final norm); ``n_layers + 1`` (:func:`normed_layer`) is the last block's output
            through the final norm, applied per token before pooling.

    Returns: ``{pooling: float32 tensor [len(ids), len(layers), d_model]}`` on the CPU.
    """
    check_poolings(poolings)
    n_layers = lm.anatomy.n_layers
    layers = list(range(n_layers + 1)) if layers is None else list(layers)
    if any(not 0 <= l <= n_layers + 1 for l in layers):
        raise TunescopeError(f"layers must lie in 0..{n_layers + 1} (0 = embeddings, "
                             f"{n_layers + 1} = last block through the final norm), got {layers}")
    blocks = sorted({min(l, n_layers) - 1 for l in layers if l > 0})
    points = (("embed",) if 0 in layers else ()) + (("resid_post",) if blocks else ())
    out = {p: torch.empty((len(ids), len(layers), lm.anatomy.d_model)) for p in poolings}
    drop = special_first(lm.tokenizer, ids)
    sizer = BatchSizer(batch_size or default_batch_size(lm))

    def run(rows):
        batch = left_pad([ids[i] for i in rows], lm.tokenizer.pad_token_id, lm.device)
        with trace(lm, points=points, layers=blocks or [0], stop_early=True) as rec:
            lm.model(**batch.model_inputs(), use_cache=False)
        weights = {p: pooling_weights(batch.attention_mask, p, [drop[i] for i in rows])
                   for p in poolings}
        index = torch.tensor(list(rows))
        for j, layer in enumerate(layers):
            if layer == 0:
                h = rec["embed"][0]
            elif layer <= n_layers:
                h = rec["resid_post"][layer - 1]
            else:
                h = lm.anatomy.final_norm(rec["resid_post"][n_layers - 1])
            h = h.float()
            for p in poolings:
                out[p][index, j] = (h * weights[p]).sum(1).cpu()
        bar.advance(len(rows))

    with progress(len(ids), desc or "representations") as bar:
        for bucket in length_buckets([len(s) for s in ids], sizer.batch_size):
            sizer.run(bucket, run)
    return out
