"""Greedy generation in batches (left-padded, length-bucketed)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Generation:
    """One greedy continuation: its text, its token ids (without the prompt), and the prompt's
    token ids as the model saw them."""

    text: str
    token_ids: tuple[int, ...]
    prompt_ids: tuple[int, ...]


@torch.inference_mode()
def generate_greedy(lm: LM, prompts: Sequence[str], max_new_tokens: int = 300,
                    batch_size: int | None = None, stop_at_eos: bool = True,
                    desc: str | None = None) -> list[Generation]:
    """Greedy (argmax) continuation of each prompt, up to ``max_new_tokens`` tokens.

    Generation stops at the end-of-sequence token (not included) when ``stop_at_eos``.
    Batched results equal one-at-a-time results in float32.
    """
    ids = encode(lm, prompts)
    eos = lm.tokenizer.eos_token_id if stop_at_eos else None
    pad = lm.tokenizer.pad_token_id
    results: list[Generation | None] = [None] * len(ids)
    sizer = BatchSizer(batch_size or default_batch_size(lm))

    def run(rows):
        batch = left_pad([ids[i] for i in rows], pad, lm.device)
        out = lm.model.generate(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask,
            max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
            eos_token_id=eos, pad_token_id=pad, temperature=None, top_p=None, top_k=None)
        for r, i in enumerate(rows):
            new = out[r, batch.input_ids.shape[1]:].tolist()
            if eos is not None and eos in new:
                new = new[:new.index(eos)]
            results[i] = Generation(lm.tokenizer.decode(new, skip_special_tokens=True),
                                    tuple(new), tuple(ids[i]))
        bar.advance(len(rows))

    with progress(len(ids), desc or "generating") as bar:
        for bucket in length_buckets([len(s) for s in ids], sizer.batch_size):
            sizer.run(bucket, run)
    return results
