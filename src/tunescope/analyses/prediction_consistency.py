"""prediction_consistency (C1): do paraphrased factual queries get the same answer?

For every relation, fact and template (``[Y]`` last), the prompt is the template's text before
``[Y]`` with the subject filled in. The model's prediction is either the best of the relation's
candidate objects by log-probability (``mode="candidates"``; summed or length-normalised mean)
or the object it generates greedily (``mode="greedy"``). The candidates are the relation's full
object set (all objects of its fact file, :attr:`Relation.objects`), also when only a sample of
its facts is asked. Consistency is counted over the facts (a subject with two objects is two
facts). Metrics: see :mod:`tunescope.analyses.helpers.consistency_metrics`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tunescope.analyses.helpers import consistency_metrics
from tunescope.analyses.registry import register
from tunescope.analyses.skeleton import AnalysisRun
from tunescope.data.types import Relation, Template
from tunescope.engine.generation import generate_greedy
from tunescope.engine.scoring import score_continuations
from tunescope.errors import TunescopeError
from tunescope.models.lm import LM
from tunescope.result import Result, fingerprint

_ANSWER_WORD = re.compile(r"\w+", re.UNICODE)

FEW_CANDIDATES = 10
"""A relation with fewer candidate objects is flagged: chance accuracy is 1/n_candidates and
consistency is inflated (a relation with one candidate is degenerate and left out of the macro
averages)."""


@dataclass(frozen=True)
class PredictionConsistencyConfig:
    """C1 settings.

    mode: ``"candidates"`` (argmax over the relation's candidate objects) or ``"greedy"``
        (the greedy continuation's first words, as many as the gold object has, compared
        whole: :func:`greedy_answer`).
    score: ``"sum"`` (summed log-probability of the candidate's tokens) or ``"mean"``
        (length-normalised).
    article_filter: skip (template, fact) where "a [Y]"/"an [Y]" does not fit the object.
    chat: wrap prompts in the chat template (instruct models); raw prompts by default.
    max_new_tokens: generation budget of greedy mode.
    """

    mode: str = "candidates"
    score: str = "sum"
    article_filter: bool = True
    chat: bool = False
    max_new_tokens: int = 8
    batch_size: int | None = None


def article_fits(template: Template, obj: str) -> bool:
    """False when the template reads "a [Y]" before a vowel or "an [Y]" before a consonant."""
    if template.article is None or not obj:
        return True
    vowel = obj[0].lower() in "aeiou"
    return vowel == (template.article == "an")


def answer_words(text: str) -> list[str]:
    """``text`` normalised to its words: Unicode NFKC, lower-cased, every run of letters and
    digits a word, everything else (spaces, punctuation, hyphens) a separator."""
    return _ANSWER_WORD.findall(unicodedata.normalize("NFKC", text).lower())


def greedy_answer(generated: str, gold: str) -> str:
    """The answer a greedy continuation gives, compared whole with ``gold``: the
    continuation's first k normalised words (:func:`answer_words`), k = the number of words of
    the gold object, joined by single spaces ("New York is" against "New Delhi" gives
    "new york"; "" when nothing was generated). Correct when it equals the normalised gold
    object; two templates of one fact agree when their answers are equal."""
    return " ".join(answer_words(generated)[:max(1, len(answer_words(gold)))])


def queries(relations: Sequence[Relation], article_filter: bool = True) -> pd.DataFrame:
    """One row per (relation, fact, template) to ask: relation, fact (the fact's index in
    ``relation.facts``: the unit consistency is counted over), subject, object, template index,
    template, prompt. Templates whose ``[Y]`` is not last are skipped."""
    rows = []
    for rel in relations:
        templates = [t for t in rel.templates if t.y_last]
        for f_index, fact in enumerate(rel.facts):
            for t_index, template in enumerate(templates):
                if article_filter and not article_fits(template, fact.object):
                    continue
                rows.append({"relation": rel.id, "fact": f_index, "subject": fact.subject,
                             "object": fact.object, "template_index": t_index,
                             "template": template.pattern,
                             "prompt": template.prompt(fact.subject)})
    return pd.DataFrame(rows, columns=["relation", "fact", "subject", "object", "template_index",
                                       "template", "prompt"])


def _check(relations: Sequence[Relation], config: PredictionConsistencyConfig) -> None:
    if config.mode not in ("candidates", "greedy"):
        raise TunescopeError(f"unknown mode '{config.mode}'; use 'candidates' or 'greedy'")
    if config.score not in ("sum", "mean"):
        raise TunescopeError(f"unknown score '{config.score}'; use 'sum' or 'mean'")
    if not relations:
        raise TunescopeError("no relations given")


def _predict_candidates(lm, table, relations, config) -> pd.DataFrame:
    objects = {rel.id: list(rel.objects) for rel in relations}
    cands = [objects[r] for r in table["relation"]]
    scores = score_continuations(lm, table["model_prompt"].tolist(), cands,
                                 batch_size=config.batch_size,
                                 desc=f"{lm.name}: scoring ParaRel candidates")
    best, gold_score, best_score, gold_rank = [], [], [], []
    for cand, gold, s in zip(cands, table["object"], scores):
        values = s.sum_logprob if config.score == "sum" else s.mean_logprob
        i = int(np.argmax(values))
        g = cand.index(gold)
        best.append(cand[i])
        best_score.append(float(values[i]))
        gold_score.append(float(values[g]))
        gold_rank.append(int((values > values[g]).sum()) + 1)
    return table.assign(prediction=best, correct=[p == o for p, o in zip(best, table["object"])],
                        prediction_score=best_score, gold_score=gold_score, gold_rank=gold_rank,
                        n_candidates=[len(c) for c in cands])


def _predict_greedy(lm, table, config) -> pd.DataFrame:
    outs = generate_greedy(lm, table["model_prompt"].tolist(), max_new_tokens=config.max_new_tokens,
                           batch_size=config.batch_size, desc=f"{lm.name}: greedy ParaRel answers")
    answers = [greedy_answer(g.text, o) for g, o in zip(outs, table["object"])]
    gold = [" ".join(answer_words(o)) for o in table["object"]]
    return table.assign(generated=[g.text for g in outs], prediction=answers,
                        correct=[a == g and a != "" for a, g in zip(answers, gold)])


def candidate_flags(relations: Sequence[Relation], asked: set[str]) -> list[str]:
    """One line per asked relation whose candidate set is degenerate (one object) or small
    (fewer than :data:`FEW_CANDIDATES`)."""
    out = []
    for rel in relations:
        n = len(rel.objects)
        if rel.id not in asked or n >= FEW_CANDIDATES:
            continue
        if n == 1:
            out.append(f"C1 {rel.id}: one candidate object ({rel.objects[0]!r}); accuracy and "
                       "consistency are 1 by construction, so the relation is left out of the "
                       "macro averages")
        else:
            out.append(f"C1 {rel.id}: only {n} candidate objects (chance accuracy {1 / n:.2f}); "
                       "its accuracy and consistency are inflated against relations with many")
    return out


@register("prediction_consistency", PredictionConsistencyConfig, dataset="pararel")
def prediction_consistency(lm: LM, relations: Sequence[Relation],
                           config: PredictionConsistencyConfig = PredictionConsistencyConfig()
                           ) -> Result:
    """Accuracy and consistency of factual predictions across paraphrased templates (C1)."""
    run = AnalysisRun("prediction_consistency", lm, config)
    _check(relations, config)
    table = queries(relations, config.article_filter)
    if table.empty:
        raise TunescopeError("no queries: no template has [Y] last, or the article filter "
                             "removed every (template, fact)")
    table["model_prompt"] = [lm.format_prompt(p, chat=config.chat) for p in table["prompt"]]
    if config.mode == "candidates":
        predictions = _predict_candidates(lm, table, relations, config)
    else:
        predictions = _predict_greedy(lm, table, config)
    predictions = predictions.drop(columns="model_prompt")
    candidates = {rel.id: len(rel.objects) for rel in relations}
    per_relation = consistency_metrics.per_relation(predictions)
    per_relation["n_candidates"] = per_relation["relation"].map(candidates).astype(np.int64)
    if config.mode == "greedy":
        per_relation["n_candidates"] = 0            # unrestricted generation: no candidate set
    per_relation["degenerate"] = per_relation["n_candidates"] == 1
    summary = {f"macro_{k}": v for k, v in consistency_metrics.macro(
        per_relation[~per_relation["degenerate"]]).items()}
    flags = (candidate_flags(relations, set(per_relation["relation"]))
             if config.mode == "candidates" else [])
    summary.update(mode=config.mode, prompt_format="chat" if config.chat else "raw",
                   n_relations=int((~per_relation["degenerate"]).sum()),
                   n_queries=len(predictions), n_facts=int(per_relation["n_facts"].sum()))
    if flags:
        summary["flags"] = flags
    dataset = {"kind": "pararel", "relations": [r.id for r in relations],
               "size": len(predictions),
               "sampling": {r.id: r.sampling or "all" for r in relations},
               "n_candidates": candidates,
               "fingerprint": fingerprint([[r.id, [t.pattern for t in r.templates],
                                            [(f.subject, f.object) for f in r.facts],
                                            list(r.objects)] for r in relations])}
    return run.result({"per_relation": per_relation, "predictions": predictions}, summary,
                      dataset)
