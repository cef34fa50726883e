"""Paraphrase pairs for representation consistency (C2): local files, a built-in set, hub data.

* :func:`load_pairs` reads a CSV/TSV (header ``a,b,label`` or ``sentence1,sentence2,label``,
  optionally ``source``) or a JSONL file (objects ``{"a", "b", "label"[, "source"]}``).
  Label 1 means paraphrase, 0 not; ``"0"``/``"1"``/``true``/``false`` are accepted.
* :func:`builtin_pairs` is a built-in set of 320 pairs, half paraphrases and half hard
  non-paraphrases (high word overlap, different meaning): 160 hand-written everyday sentences
  (``source="written"``) and 160 generated from true facts (``source="factual"``).
* :func:`pararel_pairs` builds matched pairs from ParaRel relations (``source="pararel"``):
  the same fact in two templates (paraphrase) against two facts in the same two templates
  (non-paraphrase).
* :func:`hf_pairs` loads MRPC or TaPaCo from the Hugging Face hub through the optional
  ``datasets`` package (``pip install tunescope[online]``).

Every malformed row raises :class:`~tunescope.errors.DataError` naming file, line and field.
"""

from __future__ import annotations

import functools
import importlib
import os
import random
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from tunescope.data.files import csv_rows, display_path, json_objects, read_text, shown
from tunescope.data.types import Fact, ParaphrasePair, Relation
from tunescope.errors import DataError, HubUnavailableError, TunescopeError

_COLUMNS = (("a", "b"), ("sentence1", "sentence2"))
"""Accepted header names for the two sentences, in order of preference."""

MRPC_NAMES = frozenset({"mrpc", "glue/mrpc", "glue:mrpc", "nyu-mll/glue", "nyu-mll/glue/mrpc"})
TAPACO_NAMES = frozenset({"tapaco", "community-datasets/tapaco"})


def parse_label(value, path: Path, line: int, field: str = "label") -> int:
    """0 or 1 from 0/1, "0"/"1", true/false (JSON or text); DataError otherwise."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and value in (0, 1):
        return value
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("0", "1"):
            return int(v)
        if v in ("true", "false"):
            return int(v == "true")
    got = "missing" if value is None else shown(value)
    raise DataError(f"must be 0 or 1 (or true/false), got {got}", path=display_path(path),
                    line=line, field=field)


def _pair(row: dict, names: tuple[str, str], path: Path, line: int,
          default_source: str) -> ParaphrasePair:
    texts = []
    for name in names:
        value = row.get(name)
        if not isinstance(value, str) or not value.strip():
            what = ("missing" if value is None
                    else f"must be a non-empty string, got {shown(value)}")
            raise DataError(what, path=display_path(path), line=line, field=name)
        texts.append(value.strip())
    if "label" not in row or row["label"] is None:
        raise DataError("missing", path=display_path(path), line=line, field="label")
    label = parse_label(row["label"], path, line)
    source = row.get("source")
    if source is not None and not isinstance(source, str):
        raise DataError(f"must be a string, got {shown(source)}", path=display_path(path),
                        line=line, field="source")
    return ParaphrasePair(texts[0], texts[1], label, source or default_source)


def _csv_pairs(path: Path, text: str, delimiter: str) -> list[tuple[int, ParaphrasePair]]:
    """(line, pair) of each record of a CSV/TSV text: the line where the record starts (a
    quoted cell may span lines), which errors name too."""
    header = None
    pairs = []
    where = display_path(path)
    for start, row in csv_rows(path, text, delimiter):
        if header is None:
            header = [cell.strip().lower() for cell in row]
            names = next((n for n in _COLUMNS if set(n) <= set(header)), None)
            if names is None:
                raise DataError(f"header needs columns a, b, label (or sentence1, sentence2,"
                                f" label), got {shown(header)}", path=where, line=start,
                                field="a")
            if "label" not in header:
                raise DataError("header has no 'label' column", path=where, line=start,
                                field="label")
            continue
        record = {h: (row[i] if i < len(row) else None) for i, h in enumerate(header)}
        pairs.append((start, _pair(record, names, path, start, "")))
    return pairs


def _jsonl_pairs(path: Path, text: str) -> list[tuple[int, ParaphrasePair]]:
    pairs = []
    for lineno, row in json_objects(path, text):
        names = next((n for n in _COLUMNS if n[0] in row or n[1] in row), _COLUMNS[0])
        pairs.append((lineno, _pair(row, names, path, lineno, "")))
    return pairs


def load_pairs(path: str | os.PathLike) -> list[ParaphrasePair]:
    """Paraphrase pairs from a ``.csv``, ``.tsv`` or ``.jsonl`` file (format by extension).

    CSV/TSV: a header row naming ``a``, ``b`` (or ``sentence1``, ``sentence2``) and ``label``
    (``source`` optional, other columns ignored); line numbers in errors count the header as
    line 1. JSONL: one object per line with ``a``, ``b``, ``label`` (``source`` optional).
    Raises DataError (naming file, line and field) for a missing file, an unknown extension,
    an empty file, an empty sentence or a label that is not 0/1.
    """
    return [pair for _, pair in numbered_pairs(path)]


def numbered_pairs(path: str | os.PathLike) -> list[tuple[int, ParaphrasePair]]:
    """``(line, pair)`` for each pair :func:`load_pairs` reads from a file, in file order: the
    1-based line where the pair's record starts (CSV/TSV: the header is line 1)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".csv", ".tsv", ".jsonl"):
        kind = shown(suffix) if suffix else "(no extension)"
        raise DataError(f"unknown pairs format {kind}: expected .csv, .tsv or .jsonl",
                        path=display_path(p))
    p, text = read_text(p)
    if suffix == ".jsonl":
        pairs = _jsonl_pairs(p, text)
    else:
        pairs = _csv_pairs(p, text, "\t" if suffix == ".tsv" else ",")
    if not pairs:
        raise DataError("no pairs in file (empty or header only)", path=display_path(p))
    return pairs


def builtin_pairs_path() -> Path:
    """The JSONL file of the built-in pairs (inside the installed package)."""
    return Path(str(resources.files("tunescope.data").joinpath("builtin", "pairs.jsonl")))


@functools.lru_cache(maxsize=1)
def _builtin() -> tuple[ParaphrasePair, ...]:
    return tuple(load_pairs(builtin_pairs_path()))


def builtin_pairs() -> list[ParaphrasePair]:
    """The built-in set: 320 pairs, 160 paraphrases and 160 hard non-paraphrases.

    160 are hand-written everyday sentences (``source="written"``: each base sentence has one
    paraphrase and one non-paraphrase with swapped roles, negation, a changed entity, time or
    quantity); 160 are built from true facts (``source="factual"``: capitals, currencies,
    languages, authors, painters, composers; non-paraphrases change the entity or the relation).
    """
    return list(_builtin())


# --- ParaRel-derived pairs -------------------------------------------------------------------

def _quotas(available: list[int], total: int) -> list[int]:
    """``total`` split as evenly as possible over slots holding ``available`` items each: a
    slot with fewer gets all of its items and the rest is shared by the others (earlier slots
    get the remainder)."""
    quotas = [0] * len(available)
    open_ = [i for i, n in enumerate(available) if n > 0]
    left = total
    while left > 0 and open_:
        share, extra = divmod(left, len(open_))
        for k, i in enumerate(open_):
            quotas[i] += min(share + (k < extra), available[i] - quotas[i])
        left = total - sum(quotas)
        open_ = [i for i in open_ if quotas[i] < available[i]]
    return quotas


def _partner(rng: np.random.Generator, facts: Sequence[Fact], f: Fact) -> Fact | None:
    """A fact of the same relation with another subject, and another object where the
    relation has one (uniform among those; None when no other subject exists)."""
    others = [g for g in facts if g.subject != f.subject]
    different = [g for g in others if g.object != f.object]
    pool = different or others
    return pool[int(rng.integers(len(pool)))] if pool else None


def pararel_pairs(relations: Sequence[Relation], max_pairs: int | None = None,
                  seed: int = 0) -> list[ParaphrasePair]:
    """Matched paraphrase pairs from ParaRel relations (docs/methods.md#c2), ``source="pararel"``.

    For a fact f (subject and object) of a relation and two of its templates i < j (in the
    relation's template order):

    * paraphrase (label 1): f filled into template i and into template j;
    * non-paraphrase (label 0): f in template i and g in template j, where g is another fact of
      the same relation with a different subject (and a different object wherever the relation
      has one), drawn uniformly.

    Every unit (f, i, j) gives both pairs, one after the other, so the two labels span the same
    template pairs and differ only in the fact: the labels are balanced. Relations with fewer
    than two templates or two subjects give none. A paraphrase repeats its subject and object
    words and a non-paraphrase does not, so word overlap alone separates the labels well here:
    read a model's AUC on these pairs against C2's lexical-overlap control.

    Args:
        relations: from :func:`tunescope.data.pararel` (pass ``y_last_only=False`` there to use
            every template, not just those that end in ``[Y]``).
        max_pairs: at most this many pairs in all (an odd number is rounded down; None: every
            unit of every relation): ``max_pairs // 2`` units shared as evenly as possible
            over the relations (a relation with fewer units gives all of them, the others
            share the rest), each relation's units drawn without replacement.
        seed: of ``numpy.random.default_rng``; the result is deterministic for a seed.

    Returns: pairs in relation order, each relation's units in the order of (fact, i, j).
    """
    if max_pairs is not None and max_pairs < 2:
        raise TunescopeError(f"max_pairs must be at least 2 (one paraphrase and one "
                             f"non-paraphrase), got {max_pairs}")
    rng = np.random.default_rng(seed)
    units = []
    for relation in relations:
        n_templates = len(relation.templates)
        subjects = {f.subject for f in relation.facts}
        if n_templates < 2 or len(subjects) < 2:
            units.append([])
            continue
        units.append([(f, i, j) for f in relation.facts for i in range(n_templates)
                      for j in range(i + 1, n_templates)])
    total = sum(map(len, units))
    quotas = _quotas([len(u) for u in units], total if max_pairs is None
                     else min(max_pairs // 2, total))
    pairs = []
    for relation, candidates, quota in zip(relations, units, quotas):
        if quota < len(candidates):
            chosen = np.sort(rng.choice(len(candidates), size=quota, replace=False))
            candidates = [candidates[k] for k in chosen]
        for f, i, j in candidates:
            g = _partner(rng, relation.facts, f)
            ti, tj = relation.templates[i], relation.templates[j]
            first = ti.fill(f.subject, f.object)
            pairs.append(ParaphrasePair(first, tj.fill(f.subject, f.object), 1, "pararel"))
            pairs.append(ParaphrasePair(first, tj.fill(g.subject, g.object), 0, "pararel"))
    return pairs


# --- the Hugging Face hub ---------------------------------------------------------------------

def import_datasets():
    """The ``datasets`` module, or a one-line TunescopeError saying how to install it."""
    try:
        return importlib.import_module("datasets")
    except ImportError:
        raise TunescopeError("the 'datasets' package is needed for hub datasets: "
                             "pip install tunescope[online]") from None


def hub_load(hub_id: str, config: str | None, split: str, local_hint: str):
    """``datasets.load_dataset(hub_id, config, split=split)`` with one-line errors.

    ``local_hint`` names the offline alternative (e.g. ``"load_pairs(path)"``).
    """
    datasets = import_datasets()
    try:
        return datasets.load_dataset(hub_id, config, split=split)
    except Exception as e:  # noqa: BLE001 - network, missing split, cache: all one message
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        what = f"{hub_id}/{config}" if config else hub_id
        raise HubUnavailableError(
            f"could not load {what} (split {split!r}) from the Hugging Face hub: {reason}; "
            f"the hub may be unreachable (offline?) - use {local_hint} with a local "
            f"CSV/JSONL file instead") from None


def _mrpc(split: str, limit: int | None) -> list[ParaphrasePair]:
    rows = hub_load("nyu-mll/glue", "mrpc", split, "load_pairs(path)")
    pairs = []
    for row in rows:
        if limit is not None and len(pairs) >= limit:
            break
        if row.get("label") not in (0, 1):  # the GLUE test split has no labels (-1)
            continue
        pairs.append(ParaphrasePair(row["sentence1"], row["sentence2"], int(row["label"]), "mrpc"))
    return pairs


def _tapaco(split: str, limit: int | None, language: str, seed: int) -> list[ParaphrasePair]:
    rows = hub_load("community-datasets/tapaco", language, split, "load_pairs(path)")
    groups: dict[str, list[str]] = {}
    for row in rows:
        text = (row.get("paraphrase") or "").strip()
        if text and text not in groups.setdefault(str(row["paraphrase_set_id"]), []):
            groups[str(row["paraphrase_set_id"])].append(text)
    return tapaco_pairs(groups, limit, seed)


def tapaco_pairs(groups: dict[str, list[str]], limit: int | None = None,
                 seed: int = 0) -> list[ParaphrasePair]:
    """Balanced pairs from paraphrase groups: label 1 within a group, label 0 across groups.

    Deterministic for a seed: groups are ordered by id and shuffled by the seed; each usable
    group (two sentences or more) gives one paraphrase pair, and its first chosen sentence is
    paired with a sentence of another, randomly chosen group as a non-paraphrase.
    """
    rng = random.Random(seed)
    ids = sorted(g for g in groups if len(groups[g]) >= 2)
    rng.shuffle(ids)
    if limit is not None:
        ids = ids[:(limit + 1) // 2]
    pairs = []
    for k, gid in enumerate(ids):
        a, b = rng.sample(groups[gid], 2)
        pairs.append(ParaphrasePair(a, b, 1, "tapaco"))
        if len(ids) > 1:
            other = ids[(k + 1 + rng.randrange(len(ids) - 1)) % len(ids)]
            pairs.append(ParaphrasePair(a, rng.choice(groups[other]), 0, "tapaco"))
    return pairs[:limit] if limit is not None else pairs


def hf_pairs(name: str, split: str = "validation", limit: int | None = None, *,
             language: str = "en", seed: int = 0) -> list[ParaphrasePair]:
    """Paraphrase pairs from the Hugging Face hub: MRPC or TaPaCo.

    ``name``: ``"mrpc"`` (also ``"glue/mrpc"``, ``"nyu-mll/glue"``) or ``"tapaco"``. MRPC rows
    keep their label (1 = equivalent); unlabelled rows (the GLUE test split) are skipped.
    TaPaCo holds paraphrase groups in one ``train`` split (used when ``split`` is the default
    ``"validation"``); :func:`tapaco_pairs` builds balanced pairs from them with ``seed``.
    ``limit`` caps the number of pairs. Needs ``pip install tunescope[online]``; a hub that
    cannot be reached raises a one-line TunescopeError.
    """
    key = name.strip().lower()
    if key in MRPC_NAMES:
        return _mrpc(split, limit)
    if key in TAPACO_NAMES:
        return _tapaco("train" if split == "validation" else split, limit, language, seed)
    raise TunescopeError(f"unknown paraphrase dataset {name!r}: expected 'mrpc' or 'tapaco' "
                         "(or load_pairs(path) for a local CSV/JSONL file)")
