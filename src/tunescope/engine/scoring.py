"""Candidate scoring with a shared prompt: each prompt runs once, its key/value cache serves
all of its candidate continuations.

Log-probabilities are natural logarithms (nats) in float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from tunescope.common.progress import progress
from tunescope.engine.batching import (
    BatchSizer,
    default_batch_size,
    encode,
    left_pad,
    length_buckets,
)
from tunescope.engine.cache import cache_of, select_cache, with_cache
from tunescope.models.lm import LM

LOGIT_BUDGET = 1 << 25
"""Upper bound on logits materialised at once in the candidate pass (positions x vocab)."""


@dataclass(frozen=True)
class ContinuationScores:
    """Scores of one prompt's candidates: ``sum_logprob`` and ``mean_logprob`` (nats, summed or
    averaged over the candidate's tokens) and ``n_tokens``, each an array [n_candidates]."""

    sum_logprob: np.ndarray
    mean_logprob: np.ndarray
    n_tokens: np.ndarray


@dataclass
class _Query:
    prefix: list[int]            # tokens run once (the prompt, up to the shared boundary)
    continuations: list[list[int]]
    skips: list[int]             # leading tokens of each continuation that are not scored


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def split_continuations(lm: LM, prompt: str, candidates: Sequence[str], sep: str = " ") -> _Query:
    """Tokenise ``prompt`` and each ``prompt + sep + candidate``; a candidate's own tokens are
    those of ``prompt + sep + candidate`` after the longest prefix it shares with the prompt's
    tokens.

    Where a tokenizer merges across the boundary for some candidate (its own tokens then start
    before the prompt's end), the prefix run once is shortened to what every candidate shares;
    the prompt tokens that the other candidates then carry in front of their own are fed but
    not scored (``skips``), so each candidate's score and token count cover exactly its own
    tokens, whatever the other candidates are."""
    prompt_ids = encode(lm, [prompt])[0]
    fulls = encode(lm, [prompt + sep + c for c in candidates])
    own = [_common_prefix(prompt_ids, full) for full in fulls]
    shared = min(own, default=len(prompt_ids))
    if shared == 0:
        raise ValueError(f"prompt {prompt!r} shares no token with its continuations")
    for c, full, n in zip(candidates, fulls, own):
        if len(full) == n:
            raise ValueError(f"candidate {c!r} adds no token after prompt {prompt!r}")
    return _Query(prompt_ids[:shared], [full[shared:] for full in fulls],
                  [n - shared for n in own])


@torch.inference_mode()
def _score_batch(lm: LM, queries: list[_Query]) -> list[list[float]]:
    """Summed log-probability of every continuation of ``queries`` (one prompt pass, then the
    continuations in row chunks that reuse the prompts' cache)."""
    pad = lm.tokenizer.pad_token_id
    batch = left_pad([q.prefix for q in queries], pad, lm.device)
    out = lm.model(**batch.model_inputs(), use_cache=True, logits_to_keep=1)
    first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)
    cache = cache_of(out)
    scores = [[float(first[i, c[0]]) if skip == 0 else 0.0
               for c, skip in zip(q.continuations, q.skips)] for i, q in enumerate(queries)]

    # Continuations of two or more tokens: feed all but the last token on top of the cache.
    # Candidates of one prompt that share those input tokens ("New York", "New Delhi") share a
    # row: its log-probabilities serve all of them.
    row_of: dict[tuple[int, tuple[int, ...]], list[tuple[int, list[int], int]]] = {}
    for i, q in enumerate(queries):
        for j, (c, skip) in enumerate(zip(q.continuations, q.skips)):
            if len(c) > 1:
                row_of.setdefault((i, tuple(c[:-1])), []).append((j, c, skip))
    rows = sorted(row_of.items(), key=lambda r: -len(r[0][1]))
    vocab = lm.anatomy.vocab_size
    start = 0
    while start < len(rows):
        width = len(rows[start][0][1])
        same = next((k for k in range(start, len(rows)) if len(rows[k][0][1]) != width),
                    len(rows)) - start              # rows of one width: no padding in a chunk
        n = max(1, min(same, LOGIT_BUDGET // (width * vocab)))
        chunk = rows[start:start + n]
        start += n
        prompt_rows = torch.tensor([i for (i, _), _ in chunk], device=lm.device)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for r, ((_, inputs), _) in enumerate(chunk):
            ids[r, :len(inputs)] = torch.tensor(inputs)
            mask[r, :len(inputs)] = 1
        ids, mask = ids.to(lm.device), mask.to(lm.device)
        positions = batch.lengths[prompt_rows, None] + torch.arange(width, device=lm.device)
        logits = lm.model(
            input_ids=ids, position_ids=positions,
            attention_mask=torch.cat([batch.attention_mask[prompt_rows], mask], dim=1),
            **with_cache(lm.model, select_cache(cache, prompt_rows)), use_cache=True).logits
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        for r, ((i, _), members) in enumerate(chunk):
            for j, c, skip in members:
                start_k = max(skip, 1)          # token k is predicted at row position k - 1
                targets = torch.tensor(c[start_k:], device=lm.device)
                where = torch.arange(start_k - 1, len(c) - 1, device=lm.device)
                scores[i][j] += float(logprobs[r, where, targets].sum())
    return scores


def score_continuations(lm: LM, prompts: Sequence[str],
                        candidates_per_prompt: Sequence[Sequence[str]], sep: str = " ",
                        batch_size: int | None = None,
                        desc: str | None = None) -> list[ContinuationScores]:
    """Score candidate continuations of each prompt by their log-probability.

    For prompt ``i`` and candidate ``c``, the score is the sum over the candidate's tokens of
    ``log p(token | prompt, earlier candidate tokens)``, where the candidate's tokens are those
    that ``prompt + sep + c`` adds to the prompt's tokens (from where it first differs from
    them, when the tokenizer merges across the boundary: :func:`split_continuations`). Each prompt runs once (batched,
    length-bucketed, left-padded) and its key/value cache is reused for all its candidates.

    Returns one :class:`ContinuationScores` per prompt, candidates in the given order.
    """
    if len(prompts) != len(candidates_per_prompt):
        raise ValueError("need one list of candidates per prompt")
    queries = [split_continuations(lm, p, cands, sep)
               for p, cands in zip(prompts, candidates_per_prompt)]
    sums: list[list[float] | None] = [None] * len(queries)
    sizer = BatchSizer(batch_size or default_batch_size(lm))

    def run(rows):
        for i, s in zip(rows, _score_batch(lm, [queries[i] for i in rows])):
            sums[i] = s
        bar.advance(len(rows))

    with progress(len(queries), desc or "scoring candidates") as bar:
        for bucket in length_buckets([len(q.prefix) for q in queries], sizer.batch_size):
            sizer.run(bucket, run)
    results = []
    for q, s in zip(queries, sums):
        n = np.array([len(c) - skip for c, skip in zip(q.continuations, q.skips)])
        total = np.array(s, dtype=np.float64)
        results.append(ContinuationScores(total, total / n, n))
    return results
