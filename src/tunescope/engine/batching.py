"""Batching: tokenisation, left padding, length buckets, and batch sizes that back off on OOM."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from tunescope.data.files import shown
from tunescope.errors import ContextLengthError
from tunescope.models.lm import LM

log = logging.getLogger(__name__)

DEFAULT_TOKEN_BUDGET = 8192
"""Default upper bound on padded tokens (batch x length) per forward pass."""


def encode(lm: LM, texts: Sequence[str], add_special_tokens: bool = True) -> list[list[int]]:
    """Token ids of each text, with the tokenizer's special tokens (e.g. BOS) when asked.

    A text that writes the BOS token itself (a chat template such as Gemma's starts with
    ``<bos>``) would get it twice, once from the text and once from the tokenizer: the
    repeated BOS is dropped, so chat-formatted and raw prompts both start with one BOS.

    Raises :class:`~tunescope.errors.ContextLengthError` when a text is longer than the model's
    context (:func:`check_context`), before any forward pass sees it.
    """
    texts = list(texts)
    ids = lm.tokenizer(texts, add_special_tokens=add_special_tokens)["input_ids"]
    if add_special_tokens:
        ids = [s[repeated_bos(lm, s):] for s in ids]
    check_context(lm, ids, texts)
    return ids


def check_context(lm: LM, ids: Sequence[Sequence[int]],
                  texts: Sequence[str] | None = None) -> None:
    """Raise :class:`~tunescope.errors.ContextLengthError` for the first token sequence longer
    than ``lm.context_length`` (no check when the model names no limit), naming its position,
    its length, the limit and the start of its text (``texts[i]``, else the decoded tokens)."""
    limit = lm.context_length
    if limit is None:
        return
    for i, seq in enumerate(ids):
        if len(seq) > limit:
            start = texts[i][:100] if texts is not None else lm.tokenizer.decode(list(seq[:30]))
            raise ContextLengthError(
                f"input {i + 1} of {len(ids)} is {len(seq):,} tokens long, more than model "
                f"'{lm.name}' takes ({limit:,} tokens): {shown(start)}")


def repeated_bos(lm: LM, ids: Sequence[int]) -> int:
    """1 when ``ids`` start with the BOS token twice (a text that writes BOS itself, plus the
    tokenizer's), else 0: how many leading tokens to drop so that one BOS is left."""
    bos = lm.tokenizer.bos_token_id
    return int(bos is not None and len(ids) > 1 and ids[0] == bos and ids[1] == bos)


@dataclass
class Padded:
    """A left-padded batch: ``input_ids``, ``attention_mask`` and ``position_ids``, all
    [B, T] on the model's device; ``lengths`` [B] are the real (unpadded) lengths."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    lengths: torch.Tensor

    def model_inputs(self) -> dict:
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask,
                "position_ids": self.position_ids}


def left_pad(seqs: Sequence[Sequence[int]], pad_id: int, device=None) -> Padded:
    """Left-pad token sequences so that every sequence ends at the last column.

    Position ids count real tokens only (0 at each sequence's first real token), so a padded
    row computes exactly what the unpadded sequence computes.
    """
    lengths = torch.tensor([len(s) for s in seqs])
    if (lengths == 0).any():
        raise ValueError("cannot run an empty token sequence")
    T = int(lengths.max())
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, T - len(s):] = torch.tensor(s, dtype=torch.long)
        mask[i, T - len(s):] = 1
    pos = (mask.cumsum(1) - 1).clamp(min=0)
    return Padded(ids.to(device), mask.to(device), pos.to(device), lengths.to(device))


def length_buckets(lengths: Sequence[int], max_batch: int,
                   token_budget: int = DEFAULT_TOKEN_BUDGET) -> list[list[int]]:
    """Group indices into batches of similar length (longest first).

    Each batch holds at most ``max_batch`` items and at most ``token_budget`` padded tokens
    (always at least one item). Returns lists of indices into ``lengths``.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches, current = [], []
    for i in order:
        longest = lengths[current[0]] if current else lengths[i]
        if current and (len(current) >= max_batch or (len(current) + 1) * longest > token_budget):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def is_oom(error: BaseException) -> bool:
    """Whether ``error`` is an out-of-memory error of torch (any device) or the allocator."""
    if isinstance(error, torch.OutOfMemoryError | MemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


class BatchSizer:
    """A batch size that halves whenever a batch runs out of memory.

    ``run(items, fn)`` calls ``fn`` on consecutive slices of ``items`` and returns the list of
    results, one per slice, in order; a slice that raises OOM is retried at half the size
    (down to 1, after which the error propagates). The reduced size is kept for later calls.
    """

    def __init__(self, batch_size: int):
        if batch_size < 1:
            raise ValueError("batch size must be >= 1")
        self.batch_size = batch_size

    def run(self, items: Sequence, fn: Callable[[Sequence], object]) -> list:
        results, start = [], 0
        while start < len(items):
            chunk = items[start:start + self.batch_size]
            try:
                results.append(fn(chunk))
            except Exception as error:  # noqa: BLE001 - only OOM is handled, others re-raised
                if not is_oom(error) or self.batch_size == 1:
                    raise
                self.batch_size = max(1, self.batch_size // 2)
                log.warning("out of memory; retrying with batch size %d", self.batch_size)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                continue
            start += len(chunk)
        return results


def default_batch_size(lm: LM) -> int:
    """A starting batch size: 16 on CPU, 64 on an accelerator (backs off on OOM)."""
    return 16 if lm.device.type == "cpu" else 64
