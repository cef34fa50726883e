"""Check a user's dataset before a run: load it with tunescope's own loader and summarise it.

:func:`check_dataset` reads a file or directory of one of :data:`KINDS` exactly as an analysis
would, so a file that passes the check loads in a run, and a bad one fails here with the same
one-line :class:`~tunescope.errors.DataError` (file, line, field). The summary holds counts only.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from pathlib import Path

from tunescope.data.files import display_path, shown
from tunescope.data.instructions import (
    load_annotations,
    load_instruction_jsonl,
    read_wu2024,
)
from tunescope.data.pairs import load_pairs
from tunescope.data.pararel import load_pararel
from tunescope.data.sft import load_sft
from tunescope.data.tasks import load_task
from tunescope.data.vocabulary import load_word_frequencies
from tunescope.data.wu2024_levels import load_levels
from tunescope.errors import DataError, TunescopeError

KINDS = ("pararel", "pairs", "task", "instructions", "wu2024", "vocabulary", "sft")
"""The dataset kinds :func:`check_dataset` knows, each read by its loader:
``pararel`` a ParaRel directory (:func:`~tunescope.data.pararel.load_pararel`), ``pairs`` a
CSV/TSV/JSONL of paraphrase pairs (:func:`~tunescope.data.pairs.load_pairs`), ``task`` a task
JSONL (:func:`~tunescope.data.tasks.load_task`), ``instructions`` prompts with marked
instructions in JSONL (:func:`~tunescope.data.instructions.load_instruction_jsonl`),
``wu2024`` the Wu et al. ``FinalDataset.tsv`` or the directory of their release,
``vocabulary`` a ``word<TAB>frequency`` file
(:func:`~tunescope.data.vocabulary.load_word_frequencies`), and ``sft`` instruction-tuning
examples in JSONL/CSV/TSV (:func:`~tunescope.data.sft.load_sft`)."""

WU2024_FILES = {"prompts": "FinalDataset.tsv", "annotations": "AnnotatedDataset.tsv",
                "vocabulary": "SingleShareGPT_Vocab.tsv"}
"""The files of the Wu et al. release that a ``wu2024`` directory check reads when present
(``FinalDataset.tsv`` is required), besides each ``<model>_levels.npz`` with its
``<model>_tokens.jsonl``."""


def check_dataset(kind: str, path: str | os.PathLike) -> dict:
    """Load ``path`` as a dataset of ``kind`` (one of :data:`KINDS`) and summarise it.

    Returns a JSON-ready dict: ``kind``, ``path``, the counts of that kind (e.g. relations,
    templates and facts of a ParaRel directory; pairs per label; examples per label), and
    ``warnings``: the loader's warnings, one line each (e.g. instruction fragments that were
    not found in their prompt). Raises the loader's :class:`~tunescope.errors.DataError`
    (naming file, line and field) for bad input, and a :class:`TunescopeError` naming the
    known kinds for an unknown ``kind``.
    """
    if not isinstance(kind, str) or kind.strip().lower() not in KINDS:
        raise TunescopeError(f"unknown dataset kind {shown(kind)}; kinds: {', '.join(KINDS)}")
    if not isinstance(path, str | os.PathLike):
        raise TunescopeError(f"a dataset path must be a file or directory name, got {shown(path)}")
    kind = kind.strip().lower()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = _CHECKS[kind](Path(path))
    notes = list(dict.fromkeys(" ".join(str(w.message).split()) for w in caught))
    return {"kind": kind, "path": display_path(path), **summary,
            "warnings": summary.get("warnings", []) + notes}


def _pararel(path: Path) -> dict:
    relations = load_pararel(path, y_last_only=False)
    return {"relations": len(relations),
            "templates": sum(len(r.templates) for r in relations),
            "templates_y_last": sum(t.y_last for r in relations for t in r.templates),
            "facts": sum(len(r.facts) for r in relations)}


def _pairs(path: Path) -> dict:
    pairs = load_pairs(path)
    labels = Counter(p.label for p in pairs)
    return {"pairs": len(pairs), "paraphrases": labels[1], "non_paraphrases": labels[0],
            "sources": dict(Counter(p.source or "(none)" for p in pairs))}


def _task(path: Path) -> dict:
    task = load_task(path)
    return {"name": task.name, "examples": len(task.examples),
            "labels": {x: sum(e.label == x for e in task.examples) for x in task.labels},
            "perturbations": dict(Counter(k for e in task.examples for k, _ in e.perturbations))}


def _instructions(path: Path) -> dict:
    prompts = load_instruction_jsonl(path)
    return _prompt_counts(prompts)


def _prompt_counts(prompts) -> dict:
    return {"prompts": len(prompts),
            "instruction_spans": sum(len(p.instruction_spans) for p in prompts),
            "with_context": sum(bool(p.context) for p in prompts),
            "categories": dict(Counter(p.category or "(none)" for p in prompts))}


def _wu2024_prompts(path: Path) -> dict:
    prompts, report = read_wu2024(path)
    out = _prompt_counts(prompts)
    out.update(sources=dict(Counter(p.source or "(unknown)" for p in prompts)),
               fragments=report.fragments, fragments_not_found=len(report.unmatched),
               prompts_without_span=len(report.no_span))
    if report.unmatched or report.no_span:
        out["warnings"] = [report.message(path)]
    return out


def _wu2024(path: Path) -> dict:
    """``FinalDataset.tsv`` itself, or the release directory: its prompts, and its ratings,
    vocabulary and stored levels when present."""
    if not path.is_dir():
        return _wu2024_prompts(path)
    final = path / WU2024_FILES["prompts"]
    if not final.is_file():
        raise DataError(f"no {WU2024_FILES['prompts']} in the Wu et al. directory",
                        path=display_path(path))
    out = _wu2024_prompts(final)
    annotations = path / WU2024_FILES["annotations"]
    if annotations.is_file():
        df = load_annotations(annotations)
        out["annotations"] = len(df)
        out["annotations_rated"] = int(df["Rating"].between(1, 4).sum())
    vocabulary = path / WU2024_FILES["vocabulary"]
    if vocabulary.is_file():
        out["vocabulary_words"] = len(load_word_frequencies(vocabulary))
    levels = {}
    for npz in sorted(path.glob("*_levels.npz")):
        model = npz.name.removesuffix("_levels.npz")
        tokens = path / f"{model}_tokens.jsonl"
        if not tokens.is_file():
            raise DataError(f"no {tokens.name} beside the levels file", path=display_path(npz))
        levels[model] = len(load_levels(npz, tokens))
    if levels:
        out["levels"] = levels
    return out


def _vocabulary(path: Path) -> dict:
    vocab = load_word_frequencies(path)
    return {"words": len(vocab), "top": list(vocab.words[:5])}


def _sft(path: Path) -> dict:
    examples = load_sft(path)
    return {"examples": len(examples),
            "splits": dict(Counter(e.split for e in examples)),
            "categories": dict(Counter(e.category or "(none)" for e in examples))}


_CHECKS = {"pararel": _pararel, "pairs": _pairs, "task": _task, "instructions": _instructions,
           "wu2024": _wu2024, "vocabulary": _vocabulary, "sft": _sft}
