"""The datasets of a study: one per kind of input an analysis takes (``Analysis.dataset``).

Each kind has a ``source`` (``"builtin"``, or a path to the user's file or directory; the
vocabulary's built-in source is ``"wordfreq"``) and size limits:

===============  ===========================================  ================================
kind             source                                       limits
===============  ===========================================  ================================
pararel          ParaRel directory (either layout)             relations (ids), max_facts
pairs            pairs ``.csv`` / ``.tsv`` / ``.jsonl``        max_pairs
task             task ``.jsonl``                               max_examples
instructions     instruction ``.jsonl`` or Wu et al. ``.tsv``  max_prompts
vocabulary       ``word<TAB>frequency`` file                   size (most frequent words)
prompts          text file, one prompt per line                max_prompts
===============  ===========================================  ================================

Every kind with a size limit also takes ``sample``: ``"random"`` (the default) draws the
items with the study's seed, ``"first"`` keeps them in file order (ParaRel's and most
collections' files put famous or easy items first, so a file-order sample is easier than the
data). Either way the groups are taken in turn (pairs by source and label, task examples by
label, instruction prompts by category, else source), so a small sample covers every group
evenly; ParaRel samples each relation's facts, while C1's candidate set stays the relation's
whole object set (:func:`tunescope.data.pararel.sample_facts`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from tunescope import data
from tunescope.data.files import read_text, recording, text_lines
from tunescope.data.instructions import builtin_instructions_path
from tunescope.data.pairs import builtin_pairs_path
from tunescope.data.pararel import builtin_pararel_path
from tunescope.data.prompts import FACTUAL_PROMPTS
from tunescope.data.tasks import builtin_task_path
from tunescope.errors import DataError

BUILTIN = "builtin"
WORDFREQ = "wordfreq"


@dataclasses.dataclass(frozen=True)
class Kind:
    """A dataset kind: its limit fields (name -> default), the built-in source's name and the
    file suffixes a user's source may have (``()``: a directory)."""

    limits: dict
    builtin: str
    suffixes: tuple[str, ...]


SAMPLES = ("random", "first")
"""Values of a dataset entry's ``sample`` field."""

KINDS: dict[str, Kind] = {
    "pararel": Kind({"relations": None, "max_facts": None, "sample": "random"}, BUILTIN, ()),
    "pairs": Kind({"max_pairs": None, "sample": "random"}, BUILTIN, (".csv", ".tsv", ".jsonl")),
    "task": Kind({"max_examples": None, "sample": "random"}, BUILTIN, (".jsonl",)),
    "instructions": Kind({"max_prompts": None, "sample": "random"}, BUILTIN, (".jsonl", ".tsv")),
    "vocabulary": Kind({"size": 26000}, WORDFREQ, ()),
    "prompts": Kind({"max_prompts": None}, BUILTIN, ()),
}


def fields(kind: str) -> dict:
    """All fields of a dataset entry of ``kind`` with their defaults."""
    return {"source": KINDS[kind].builtin, **KINDS[kind].limits}


def check_entry(kind: str, entry: dict) -> list[tuple[str, str]]:
    """Problems ``(field, message)`` of a complete dataset entry (types, existing paths)."""
    problems = []
    source = entry["source"]
    spec = KINDS[kind]
    if not isinstance(source, str) or not source:
        return [("source", f"must be '{spec.builtin}' or a path, got {source!r}")]
    if source != spec.builtin:
        path = Path(source).expanduser()
        if not path.exists():
            problems.append(("source", f"no such file or directory: {source}"))
        elif kind == "pararel" and not path.is_dir():
            problems.append(("source", f"a ParaRel source must be a directory: {source}"))
        elif kind != "pararel" and not path.is_file():
            problems.append(("source", f"must be a file: {source}"))
        elif spec.suffixes and path.suffix.lower() not in spec.suffixes:
            problems.append(("source", f"expected a {' or '.join(spec.suffixes)} file, got "
                                       f"{path.name}"))
    for name, value in entry.items():
        if name == "source" or (value is None and name != "size"):
            continue
        if name == "sample":
            if value not in SAMPLES:
                problems.append((name, f"must be 'random' (seeded) or 'first' (file order), "
                                       f"got {value!r}"))
        elif name == "relations":
            if (not isinstance(value, list) or not value
                    or not all(isinstance(r, str) and r for r in value)):
                problems.append((name, f"must be a non-empty list of relation ids, got {value!r}"))
        elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
            what = "a positive integer" + (" or null" if name != "size" else "")
            problems.append((name, f"must be {what}, got {value!r}"))
    return problems


def in_turn(items: Sequence, group: Callable, n: int | None, seed: int | None = None) -> list:
    """``n`` items taking the groups in turn (one item of each group in order of first
    appearance, then a second, ...), returned in their original order.

    ``seed`` None: each group's items in file order (its first items); else each group's items
    in an order drawn by ``numpy.random.default_rng(seed)`` (a seeded sample of each group).
    """
    if n is None or n >= len(items):
        return list(items)
    groups: dict = {}
    for i, item in enumerate(items):
        groups.setdefault(group(item), []).append(i)
    members = list(groups.values())
    if seed is not None:
        rng = np.random.default_rng(seed)
        members = [list(rng.permutation(m)) for m in members]
    order = [i for rank in itertools.zip_longest(*members) for i in rank if i is not None]
    return [items[i] for i in sorted(order[:n])]


def _prompt_lines(path: Path) -> list[str]:
    p, text = read_text(path)
    prompts = [line.strip() for _, line in text_lines(text) if line.strip()]
    if not prompts:
        raise DataError("no prompts in file (one per line)", path=str(p))
    return prompts


def build(kind: str, entry: dict, seed: int = 0):
    """The dataset an analysis of ``kind`` takes, loaded from ``entry`` with its limits applied
    (``entry["sample"]``: seeded with ``seed``, or file order): list[Relation],
    list[ParaphrasePair], Task, list[InstructionPrompt], list[str] (words, most frequent first)
    or list[str] (prompts)."""
    source = entry["source"]
    own = source != KINDS[kind].builtin
    sample = entry.get("sample", "random")
    drawn = seed if sample == "random" else None
    if kind == "pararel":
        return data.pararel(relations=entry["relations"], path=source if own else None,
                            max_facts=entry["max_facts"], sample=sample, seed=seed)
    if kind == "pairs":
        pairs = data.load_pairs(source) if own else builtin_pairs(seed)
        return in_turn(pairs, lambda p: (p.source, p.label), entry["max_pairs"], drawn)
    if kind == "task":
        task = data.load_task(source) if own else data.builtin_task()
        examples = in_turn(task.examples, lambda e: e.label, entry["max_examples"], drawn)
        return dataclasses.replace(task, examples=tuple(examples))
    if kind == "instructions":
        if not own:
            prompts = data.builtin_instructions()
        elif Path(source).suffix.lower() == ".tsv":
            prompts = data.load_wu2024(source)
        else:
            prompts = data.load_instruction_jsonl(source)
        return in_turn(prompts, lambda p: p.category or p.source, entry["max_prompts"], drawn)
    if kind == "vocabulary":
        if own:
            return list(data.load_word_frequencies(source).top(entry["size"]).words)
        return list(data.frequent_words(entry["size"]).words)
    if kind == "prompts":
        prompts = _prompt_lines(Path(source)) if own else list(FACTUAL_PROMPTS)
        return prompts[:entry["max_prompts"]]
    raise KeyError(kind)


BUILTIN_PARAREL_PAIRS = 160
"""ParaRel-derived pairs (:func:`tunescope.data.pararel_pairs` of the built-in ParaRel, every
template) added to the built-in pairs source."""


def builtin_pairs(seed: int = 0) -> list:
    """The built-in pairs source of a study: the hand-written and fact-generated pairs of
    :func:`tunescope.data.builtin_pairs`, then :data:`BUILTIN_PARAREL_PAIRS` pairs derived from
    the built-in ParaRel (same fact in two templates vs another subject), drawn with ``seed``:
    three sources ("written", "factual", "pararel"), each half paraphrases."""
    return data.builtin_pairs() + data.pararel_pairs(data.pararel(y_last_only=False),
                                                     max_pairs=BUILTIN_PARAREL_PAIRS, seed=seed)


def load_inputs(entries: dict, kinds, seed: int = 0) -> tuple[dict, dict]:
    """Load and check the datasets of ``kinds`` (``entries``: the spec's ``datasets``):
    ``({kind: dataset}, {kind: fingerprint})``. Nothing is written. The fingerprint hashes
    exactly the files the loader read (names relative to the source, and their bytes), so an
    edited input counts as a changed study while anything else in the source's folder (a run
    directory inside it, for one) does not; the loader checks the source's layout first."""

    data, inputs = {}, {}
    for kind in kinds:
        entry = entries[kind]
        with recording() as reads:
            data[kind] = build(kind, entry, seed)
        inputs[kind] = input_fingerprint(kind, entry, reads)
    return data, inputs


def input_fingerprint(kind: str, entry: dict, reads: list) -> str:
    """A hash of what a dataset was made from: ``reads`` (``(path, bytes)`` of each file its
    loader read), the wordfreq version for the built-in vocabulary, the prompts for the
    built-in prompts."""
    source = entry["source"]
    digest = hashlib.sha256()
    if source == WORDFREQ:
        from importlib.metadata import version
        digest.update(f"wordfreq {version('wordfreq')}".encode())
    if source == BUILTIN and kind == "prompts":
        digest.update("\n".join(FACTUAL_PROMPTS).encode())
    if source not in (BUILTIN, WORDFREQ):
        roots = [Path(source).expanduser()]
    else:
        roots = [_builtin_path(k) for k in (kind, "pararel") if k in BUILTIN_FILES]
    files: dict[str, bytes] = {}
    if source == BUILTIN and kind in BUILTIN_FILES:
        # The package's own files, read whole: the built-in loaders keep what they parsed
        # (lru_cache), so a second study in one process reads nothing to record.
        reads = [(f, f.read_bytes()) for f in _builtin_files(kind)]
    for path, contents in reads:
        files[_relative_name(path, roots)] = contents
    for name in sorted(files):
        digest.update(name.encode())
        digest.update(files[name])
    return digest.hexdigest()[:16]


def _relative_name(path: Path, roots: list[Path]) -> str:
    """``path`` relative to the first root (directory) that holds it, else its file name."""
    resolved = path.expanduser().resolve()
    for root in roots:
        root = root.resolve()
        if root.is_dir() and resolved.is_relative_to(root):
            return resolved.relative_to(root).as_posix()
    return path.name


BUILTIN_FILES = ("pararel", "pairs", "task", "instructions")
"""The kinds whose built-in source is a file or folder of the package."""


def _builtin_files(kind: str) -> list[Path]:
    """The package files a built-in dataset of ``kind`` is made from (the built-in pairs
    include pairs derived from the built-in ParaRel)."""
    out = []
    for name in (kind, "pararel") if kind == "pairs" else (kind,):
        path = _builtin_path(name)
        out += sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts) \
            if path.is_dir() else [path]
    return out


def _builtin_path(kind: str) -> Path:
    return {"pararel": builtin_pararel_path, "pairs": builtin_pairs_path,
            "task": builtin_task_path, "instructions": builtin_instructions_path}[kind]()
