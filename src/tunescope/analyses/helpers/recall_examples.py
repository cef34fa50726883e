"""Queries a model answers correctly, with the subject located in its tokens (C4 examples).

A query is a ParaRel (template, fact) with ``[Y]`` last; it is kept when the model's top-1 next
token after the prompt is the first token of the gold object (as tokenised after the prompt).
The subject's token span comes from character offsets, so a tokenizer that merges the leading
space into the subject's first token is handled; a query whose subject cannot be located is
skipped with its reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch

from tunescope.analyses.prediction_consistency import queries
from tunescope.data.types import Relation
from tunescope.engine.forward import next_token_logprobs_ids
from tunescope.engine.scoring import split_continuations
from tunescope.models.lm import LM


@dataclass(frozen=True)
class RecallExample:
    """A correctly answered query.

    ``input_ids``: the prompt's tokens (special tokens included); ``subject``: (first, last)
    token positions of the subject, inclusive; ``target``: the predicted (= gold) first token
    of the object; ``probability``: its probability after the prompt.
    """

    relation: str
    subject_text: str
    object: str
    template: str
    prompt: str
    input_ids: tuple[int, ...]
    subject: tuple[int, int]
    target: int
    probability: float


def subject_span(offsets: Sequence[tuple[int, int]], start: int, end: int) -> tuple[int, int] | None:
    """First and last token positions overlapping characters [start, end), or None.

    ``offsets`` are the tokenizer's (char_start, char_end) per token; special tokens have
    empty spans and never match."""
    hits = [i for i, (a, b) in enumerate(offsets) if b > a and a < end and b > start]
    return (hits[0], hits[-1]) if hits else None


def _first_object_token(lm: LM, prompt_ids: list[int], prompt: str, obj: str) -> int | None:
    """The object's first token after the prompt, tokenised as C1 scores it; None when the
    object merges with the prompt's last token."""
    try:
        query = split_continuations(lm, prompt, [obj])
    except ValueError:
        return None
    return query.continuations[0][0] if len(query.prefix) == len(prompt_ids) else None


def select_examples(lm: LM, relations: Sequence[Relation], max_examples: int = 100,
                    per_relation: int | None = None, batch_size: int | None = None
                    ) -> tuple[list[RecallExample], pd.DataFrame]:
    """Correctly answered queries, at most ``per_relation`` per relation and ``max_examples``
    in all (in dataset order), and a table of every query with ``status`` ("correct",
    "wrong", or the reason it was skipped)."""
    table = queries(relations)
    candidates, status = [], []
    for row in table.itertuples():
        enc = lm.tokenizer(row.prompt, return_offsets_mapping=True)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        start = row.template.index("[X]")
        span = subject_span(offsets, start, start + len(row.subject))
        target = _first_object_token(lm, ids, row.prompt, row.object)
        if span is None:
            status.append("subject not found in the tokens")
        elif span[1] >= len(ids) - 1:
            status.append("subject ends the prompt")
        elif target is None:
            status.append("object merges with the prompt's last token")
        else:
            status.append(None)
            candidates.append((row.Index, ids, span, target))
    logprobs = next_token_logprobs_ids(lm, [c[1] for c in candidates], batch_size,
                                       desc=f"{lm.name}: selecting recall examples")
    top = logprobs.argmax(-1)
    examples, taken = [], {}
    for (index, ids, span, target), best, lp in zip(candidates, top, logprobs):
        correct = int(best) == target
        status[index] = "correct" if correct else "wrong"
        row = table.loc[index]
        if not correct or len(examples) >= max_examples:
            continue
        if per_relation is not None and taken.get(row["relation"], 0) >= per_relation:
            continue
        taken[row["relation"]] = taken.get(row["relation"], 0) + 1
        examples.append(RecallExample(row["relation"], row["subject"], row["object"],
                                      row["template"], row["prompt"], tuple(ids), span, target,
                                      float(torch.exp(lp[target]))))
    return examples, table.assign(status=status)


def examples_table(lm: LM, examples: Sequence[RecallExample]) -> pd.DataFrame:
    """One row per example: its text, subject tokens and predicted token."""
    return pd.DataFrame([{
        "example": i, "relation": e.relation, "subject": e.subject_text, "object": e.object,
        "prompt": e.prompt, "n_tokens": len(e.input_ids), "subject_first": e.subject[0],
        "subject_last": e.subject[1],
        "subject_tokens": lm.tokenizer.decode(list(e.input_ids[e.subject[0]:e.subject[1] + 1])),
        "target": lm.tokenizer.decode([e.target]), "probability": e.probability,
    } for i, e in enumerate(examples)])
