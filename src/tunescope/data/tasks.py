"""Downstream tasks with meaning-preserving perturbations (C3): built-in, local JSONL, hub data.

* :func:`builtin_task` is a sentiment task of 200 short review sentences (movies, products,
  restaurants; 100 positive, 100 negative), each with a hand-written ``"paraphrase"`` and a
  ``"typo"`` and a ``"casing"`` perturbation made by :mod:`tunescope.data.perturb`, and (170 of
  them, those with a word in the synonym table) a ``"synonym"`` perturbation.
* :func:`load_task` reads a user's JSONL task: an optional header object
  ``{"task", "labels", "label_words", "prompt_template"}`` on the first line, then rows
  ``{"id", "text", "label", "perturbations": {kind: text}}``.
* :func:`hf_task` loads SST-2 or RTE through the optional ``datasets`` package and adds
  ``"typo"``, ``"casing"`` and (where a word of the table occurs) ``"synonym"`` perturbations
  by code. It adds no ``"paraphrase"``: that needs a
  paraphrase model, which is not available offline.

Every malformed line raises :class:`~tunescope.errors.DataError` naming file, line and field.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from importlib import resources
from pathlib import Path

from tunescope.data.files import display_path, json_objects, listed, read_text, shown
from tunescope.data.pairs import hub_load
from tunescope.data.perturb import recase, synonym_swap, typo
from tunescope.data.types import Task, TaskExample
from tunescope.errors import DataError, TunescopeError

DEFAULT_TEMPLATE = "{text}\nAnswer:"
"""Prompt template of a user task whose header gives none."""

SENTIMENT_TEMPLATE = "Review: {text}\nSentiment (positive or negative):"
SENTIMENT_LABELS = ("negative", "positive")
SENTIMENT_WORDS = (("negative", " negative"), ("positive", " positive"))

RTE_TEMPLATE = ("{text}\nQuestion: Does the last sentence follow from the text before it? "
                "Answer (yes or no):")
RTE_LABELS = ("entailment", "not_entailment")
RTE_WORDS = (("entailment", " yes"), ("not_entailment", " no"))

_WORDS = re.compile(r"[A-Za-z]+")
_HEADER_KEYS = frozenset({"task", "labels", "label_words", "prompt_template"})


def _header(path: Path, line: int, row: dict) -> dict:
    """Validated header fields (only those present)."""
    def bad(field, msg):
        return DataError(msg, path=display_path(path), line=line, field=field)

    out = {}
    if "task" in row:
        if not isinstance(row["task"], str) or not row["task"].strip():
            raise bad("task", f"must be a non-empty string, got {shown(row['task'])}")
        out["name"] = row["task"].strip()
    if "labels" in row:
        labels = row["labels"]
        if (not isinstance(labels, list) or len(labels) < 2
                or not all(isinstance(x, str) and x for x in labels)):
            raise bad("labels", f"must be a list of two or more label strings, got {shown(labels)}")
        if len(set(labels)) != len(labels):
            raise bad("labels", f"has duplicate labels: {shown(labels)}")
        out["labels"] = tuple(labels)
    if "label_words" in row:
        words = row["label_words"]
        if not isinstance(words, dict) or not all(isinstance(w, str) and w
                                                  for w in words.values()):
            raise bad("label_words",
                      f"must map each label to a non-empty string, got {shown(words)}")
        missing = [x for x in out.get("labels", ()) if x not in words]
        if missing:
            raise bad("label_words", f"no word for label(s) {listed(missing)}")
        out["label_words"] = dict(words)
    if "prompt_template" in row:
        template = row["prompt_template"]
        if not isinstance(template, str) or "{text}" not in template:
            raise bad("prompt_template",
                      f"must be a string containing {{text}}, got {shown(template)}")
        out["prompt_template"] = template
    return out


def _example(path: Path, line: int, row: dict, labels: tuple[str, ...] | None) -> TaskExample:
    def bad(field, msg):
        return DataError(msg, path=display_path(path), line=line, field=field)

    text = row.get("text")
    if not isinstance(text, str) or not text.strip():
        raise bad("text", "missing" if text is None
                  else f"must be a non-empty string, got {shown(text)}")
    label = row.get("label")
    if isinstance(label, int) and not isinstance(label, bool):
        label = str(label)
    if not isinstance(label, str) or not label:
        raise bad("label", "missing" if label is None else f"must be a string, got {shown(label)}")
    if labels is not None and label not in labels:
        raise bad("label", f"{shown(label)} is not one of the task's labels ({listed(labels)})")
    ex_id = row.get("id", f"line{line}")
    if isinstance(ex_id, int) and not isinstance(ex_id, bool):
        ex_id = str(ex_id)
    if not isinstance(ex_id, str) or not ex_id:
        raise bad("id", f"must be a non-empty string, got {shown(ex_id)}")
    perts = row.get("perturbations", {})
    if not isinstance(perts, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              and v.strip() for k, v in perts.items()):
        raise bad("perturbations", f"must be an object mapping kinds to non-empty strings, "
                                   f"got {shown(perts)}")
    return TaskExample(ex_id, text, label, tuple(perts.items()))


def _read(path: str | os.PathLike) -> tuple[Path, dict, list[tuple[int, TaskExample]]]:
    """(path, validated header fields, (line, example) of each example line) of a task file."""
    p, text = read_text(path)
    header: dict = {}
    rows = []
    for lineno, row in json_objects(p, text):
        if not rows and not header and "text" not in row and _HEADER_KEYS & row.keys():
            header = _header(p, lineno, row)
            continue
        rows.append((lineno, row))
    labels = header.get("labels")
    return p, header, [(lineno, _example(p, lineno, row, labels)) for lineno, row in rows]


def numbered_examples(path: str | os.PathLike) -> list[tuple[int, TaskExample]]:
    """``(line, example)`` for each example :func:`load_task` reads from a file, in file
    order (1-based lines)."""
    return _read(path)[2]


def load_task(path: str | os.PathLike, name: str | None = None) -> Task:
    """A labelled task with perturbations from a JSONL file.

    The first line may be a header object with any of ``"task"`` (name), ``"labels"`` (list),
    ``"label_words"`` (label -> word scored as the zero-shot continuation) and
    ``"prompt_template"`` (contains ``{text}``). Defaults: the name is ``name`` or the file
    stem, labels are the sorted distinct labels of the examples, each label's word is
    ``" " + label``, the template is :data:`DEFAULT_TEMPLATE`. Every other line is an example
    ``{"id", "text", "label", "perturbations": {kind: text}}`` (``id`` defaults to
    ``"line<N>"``, ``perturbations`` to none). ``name`` overrides the header's name.
    """
    p, header, numbered = _read(path)
    examples = [ex for _, ex in numbered]
    if not examples:
        raise DataError("no examples in file", path=display_path(p))
    labels = header.get("labels")
    seen: dict[str, int] = {}
    for lineno, ex in numbered:
        if ex.id in seen:
            raise DataError(f"duplicate id {shown(ex.id)} (first on line {seen[ex.id]})",
                            path=display_path(p), line=lineno, field="id")
        seen[ex.id] = lineno
    if labels is None:
        labels = tuple(sorted({ex.label for ex in examples}))
        if len(labels) < 2:
            raise DataError(f"a task needs two or more labels, found only {listed(labels)}",
                            path=display_path(p), field="label")
    words = header.get("label_words", {})
    return Task(name=name or header.get("name") or p.stem, labels=labels,
                label_words=tuple((x, words.get(x, " " + x)) for x in labels),
                prompt_template=header.get("prompt_template", DEFAULT_TEMPLATE),
                examples=tuple(examples))


def builtin_task_path() -> Path:
    """The JSONL file of the built-in sentiment task (inside the installed package)."""
    return Path(str(resources.files("tunescope.data").joinpath("builtin", "sentiment.jsonl")))


@functools.lru_cache(maxsize=1)
def builtin_task() -> Task:
    """The built-in sentiment task: 200 reviews, 100 per label, 3 or 4 perturbations each.

    Labels ``("negative", "positive")`` scored as `` negative`` / `` positive`` after the
    prompt :data:`SENTIMENT_TEMPLATE`. Perturbation kinds: ``"paraphrase"`` (hand-written,
    same sentiment), ``"typo"`` (:func:`~tunescope.data.perturb.typo`, seed = example number;
    a few were picked by hand where the seeded typo made a real word), ``"casing"``
    (:func:`~tunescope.data.perturb.recase`, same seed) and ``"synonym"``
    (:func:`~tunescope.data.perturb.synonym_swap`, same seed; stored for the 170 examples with
    a word in its table, absent for the other 30). All are stored in the JSONL file.
    """
    task = load_task(builtin_task_path())
    return dataclasses.replace(task, name="sentiment", labels=SENTIMENT_LABELS,
                               label_words=SENTIMENT_WORDS, prompt_template=SENTIMENT_TEMPLATE)


def perturbed(ex_id: str, text: str, label: str, seed: int,
              vocabulary: frozenset[str] = frozenset()) -> TaskExample:
    """A TaskExample with code-made ``"typo"``, ``"casing"`` and ``"synonym"`` perturbations
    for ``seed`` (``"synonym"`` only where :func:`synonym_swap` changes the text).

    ``vocabulary`` holds real words a typo must not produce (see :func:`typo`).
    """
    perts = [("typo", typo(text, seed, avoid=vocabulary)), ("casing", recase(text, seed))]
    swapped = synonym_swap(text, seed)
    if swapped != text:
        perts.append(("synonym", swapped))
    return TaskExample(ex_id, text, label, tuple(perts))


def hf_task(name: str, split: str = "validation", limit: int | None = None, *,
            seed: int = 0) -> Task:
    """SST-2 or RTE from the Hugging Face hub (GLUE), with typo, casing and synonym
    perturbations.

    ``name``: ``"sst2"`` (also ``"glue/sst2"``) or ``"rte"`` (also ``"glue/rte"``). RTE's text
    is premise + " " + hypothesis; its labels are ``entailment`` / ``not_entailment``, scored
    as `` yes`` / `` no``. Perturbations are ``"typo"``, ``"casing"`` and ``"synonym"`` (the
    last only for texts with a word in :data:`~tunescope.data.perturb.SYNONYMS`), made with seed
    ``seed * 1_000_003 + row number``; typos avoid every word that occurs in the split. There
    is no ``"paraphrase"``: that needs a paraphrase model, and none is available offline.
    Unlabelled rows (GLUE test splits) are skipped; ``limit`` caps the number of examples.
    Needs ``pip install tunescope[online]``; a hub that cannot be reached raises a one-line
    TunescopeError.
    """
    key = name.strip().lower().removeprefix("nyu-mll/").removeprefix("glue/").removeprefix("glue:")
    if key in ("sst2", "sst-2"):
        config, labels, words, template = ("sst2", SENTIMENT_LABELS, SENTIMENT_WORDS,
                                           SENTIMENT_TEMPLATE)
    elif key == "rte":
        config, labels, words, template = "rte", RTE_LABELS, RTE_WORDS, RTE_TEMPLATE
    else:
        raise TunescopeError(f"unknown task {shown(name)}: expected 'sst2' or 'rte' "
                             "(or load_task(path) for a local JSONL file)")
    rows = hub_load("nyu-mll/glue", config, split, "load_task(path)")
    kept = []  # (row number, idx, text, label)
    for i, row in enumerate(rows):
        if row.get("label") not in (0, 1):  # GLUE test splits are unlabelled (-1)
            continue
        if config == "sst2":
            text = row["sentence"].strip()
        else:
            text = row["sentence1"].strip() + " " + row["sentence2"].strip()
        kept.append((i, row.get("idx", i), text, labels[row["label"]]))
    # The words of the whole split serve as the vocabulary typos must not produce
    # (taken before the limit, so an example's typo does not depend on the limit).
    vocabulary = frozenset(w.lower() for _, _, text, _ in kept for w in _WORDS.findall(text))
    examples = [perturbed(f"{config}-{split}-{idx}", text, label, seed * 1_000_003 + i,
                          vocabulary) for i, idx, text, label in kept[:limit]]
    return Task(name=config, labels=labels, label_words=words, prompt_template=template,
                examples=tuple(examples))
