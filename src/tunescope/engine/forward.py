"""Batched forward passes: next-token distributions after each prompt."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tunescope.common.progress import progress
from tunescope.engine.batching import (
    BatchSizer,
    default_batch_size,
    encode,
    left_pad,
    length_buckets,
)
from tunescope.models.lm import LM


@torch.inference_mode()
def next_token_logprobs(lm: LM, prompts: Sequence[str], batch_size: int | None = None,
                        desc: str | None = None) -> torch.Tensor:
    """Log-probabilities of the next token after each prompt.

    Prompts are tokenised with the tokenizer's special tokens, grouped into length buckets,
    left-padded and run in batches; only the last position's logits are computed.

    Returns: float32 tensor [len(prompts), vocab] on the CPU, in prompt order.
    """
    ids = encode(lm, prompts)
    return next_token_logprobs_ids(lm, ids, batch_size, desc)


@torch.inference_mode()
def next_token_logprobs_ids(lm: LM, ids: Sequence[Sequence[int]], batch_size: int | None = None,
                            desc: str | None = None) -> torch.Tensor:
    """:func:`next_token_logprobs` for token ids already encoded: [len(ids), vocab] float32."""
    sizer = BatchSizer(batch_size or default_batch_size(lm))
    out = torch.empty((len(ids), lm.anatomy.vocab_size), dtype=torch.float32)
    pad = lm.tokenizer.pad_token_id

    def run(rows):
        batch = left_pad([ids[i] for i in rows], pad, lm.device)
        logits = lm.model(**batch.model_inputs(), logits_to_keep=1).logits[:, -1]
        out[list(rows)] = torch.log_softmax(logits.float(), dim=-1).cpu()

    with progress(len(ids), desc or "next-token distributions") as bar:
        for bucket in length_buckets([len(s) for s in ids], sizer.batch_size):
            sizer.run(bucket, lambda rows: (run(rows), bar.advance(len(rows))))
    return out


def top_predictions(lm: LM, prompts: Sequence[str], k: int = 5,
                    batch_size: int | None = None) -> list[list[tuple[str, float]]]:
    """The ``k`` most probable next tokens after each prompt, as (decoded token, probability)."""
    logprobs = next_token_logprobs(lm, prompts, batch_size)
    top = logprobs.topk(k, dim=-1)
    return [[(lm.tokenizer.decode([int(t)]), float(p.exp())) for t, p in zip(ti, pi)]
            for ti, pi in zip(top.indices, top.values)]
