"""Prompts with a marked instruction part (W1): the Wu et al. 2024 release, user JSONL files,
a built-in set, and per-token instruction masks.

* :func:`load_wu2024` reads ``FinalDataset.tsv`` of the study (632 prompts from Self-Instruct
  user-oriented tasks, LIMA and MT-Bench first turns) and turns the human-marked instruction
  fragments into instruction spans: the whole prompt sentences that the fragments touch.
* :func:`load_annotations` reads ``AnnotatedDataset.tsv`` (quality ratings of responses) and
  :func:`followed_labels` turns the ratings into followed / unfollowed labels.
* :func:`load_instruction_jsonl` reads the user format (see its docstring);
  :func:`builtin_instructions` is a built-in set written for tunescope in that format.
* :func:`instruction_mask` / :func:`instruction_mask_for` say which tokens of a prompt belong to
  its instruction, from a fast tokenizer's character offsets.

Malformed input raises :class:`~tunescope.errors.DataError` naming file, line and field.
"""

from __future__ import annotations

import csv
import functools
import io
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from tunescope.data.files import (
    display_path,
    json_objects,
    listed,
    one_line,
    read_text,
    shown,
)
from tunescope.data.types import InstructionPrompt
from tunescope.errors import DataError, TunescopeError

WU2024_COLUMNS = ("ID", "Prompt", "Response", "Instruct&Context")
"""The columns ``FinalDataset.tsv`` must have (other columns are ignored)."""

ANNOTATION_COLUMNS = ("File", "Model", "Prompt", "Reference", "Instruct", "Response", "Rating")
"""The columns ``AnnotatedDataset.tsv`` must have."""

WU2024_SOURCES = (("user_oriented_task_", "self-instruct"), ("lima_author_", "lima"),
                  ("mtbench_", "mt-bench"))
"""ID prefix -> source name: Self-Instruct user-oriented tasks, LIMA, MT-Bench first turns."""

BUILTIN_CATEGORIES = ("writing", "math", "coding", "translation", "classification", "qa")
"""The task categories of :func:`builtin_instructions`."""

_SENTENCE_BREAK = re.compile(r"(?<=[.!?:])\s+")
_INPUT_LABEL = re.compile(r"^input:\s*", re.IGNORECASE)
_FRAGMENT_SPLIT = re.compile(r"\|\|\||\n")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                         "\u00a0": " "})


# --- text helpers -----------------------------------------------------------------------------

def unescape_wu2024(cell: str) -> str:
    """A cell of the Wu et al. TSV files with ``/n`` -> newline and ``/t`` -> tab."""
    return cell.replace("/n", "\n").replace("/t", "\t")


def unwrap_cell(cell: str) -> str:
    """A TSV cell without its wrapping quotes: ``"a ""b"" c"`` -> ``a "b" c``.

    Only a cell that starts and ends with ``"`` and whose other quotes all come doubled is
    wrapped; any other cell (e.g. ``"Steak" rhymes with "peak."``) is kept as it is.
    """
    if len(cell) >= 2 and cell[0] == cell[-1] == '"' and '"' not in cell[1:-1].replace('""', ""):
        return cell[1:-1].replace('""', '"')
    return cell


def _tsv_rows(path: Path, text: str):
    """(line number, cells) of each non-blank line of a Wu et al. TSV file.

    One record per line (newlines inside cells are written ``/n``), split on tabs by the csv
    module with quoting off; each cell is then unwrapped by :func:`unwrap_cell`. (The csv
    module's own quoting would drop the quotes of an unwrapped cell that merely starts with a
    quoted phrase.)
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t",
                        quoting=csv.QUOTE_NONE)
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                yield reader.line_num, [unwrap_cell(cell) for cell in row]
    except csv.Error as e:
        raise DataError(f"malformed TSV ({one_line(e)})", path=display_path(path),
                        line=reader.line_num) from None


def _tsv_records(path: Path, text: str, columns: Sequence[str]):
    """(line number, {column: unescaped cell}) for each record of a Wu et al. TSV file whose
    header holds ``columns``; DataError for a missing column, a row of the wrong width or a
    file without a header."""
    header: list[str] | None = None
    for line, row in _tsv_rows(path, text):
        if header is None:
            header = [cell.strip() for cell in row]
            missing = [c for c in columns if c not in header]
            if missing:
                raise DataError(f"header needs columns {', '.join(columns)}; missing "
                                f"{', '.join(missing)}", path=display_path(path), line=line,
                                field=missing[0])
            continue
        if len(row) != len(header):
            raise DataError(f"expected {len(header)} tab-separated cells, got {len(row)}",
                            path=display_path(path), line=line)
        yield line, {c: unescape_wu2024(row[header.index(c)]) for c in columns}
    if header is None:
        raise DataError("empty file", path=display_path(path))


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character ranges ``[start, end)`` of the sentences of ``text``.

    Sentences never cross a line break; within a line they are split after ``.``, ``!``, ``?``
    or ``:`` followed by whitespace (``(?<=[.!?:])\\s+``). Surrounding whitespace is excluded,
    and so is a leading ``Input:`` label: ``"Input: Matilda"`` gives the sentence
    ``"Matilda"`` (a line holding only ``Input:`` gives no sentence).
    """
    spans = []
    pos = 0
    for line in text.split("\n"):
        start = 0
        for m in list(_SENTENCE_BREAK.finditer(line)) + [None]:
            end = m.start() if m else len(line)
            piece = line[start:end]
            lead = len(piece) - len(piece.lstrip())
            s, e = start + lead, start + len(piece.rstrip())
            label = _INPUT_LABEL.match(line[s:e])
            if label:
                s += label.end()
            if s < e:
                spans.append((pos + s, pos + e))
            if m:
                start = m.end()
        pos += len(line) + 1
    return spans


def _normalised(text: str) -> tuple[str, list[int]]:
    """``text`` lower-cased with curly quotes made straight and each whitespace run made one
    space, and for each character of the result its position in ``text``.

    Lower-casing works character by character, so a character whose lower case is longer
    (``"İ"`` -> ``"i̇"``) maps all its characters back to its own position.
    """
    out, where = [], []
    prev_space = False
    for i, ch in enumerate(text.translate(_QUOTES)):
        if ch.isspace():
            if prev_space:
                continue
            out.append(" ")
            where.append(i)
            prev_space = True
            continue
        prev_space = False
        for low in ch.lower():
            out.append(low)
            where.append(i)
    return "".join(out), where


def find_lenient(text: str, fragment: str, start: int = 0) -> tuple[int, int] | None:
    """The range ``[start, end)`` of the first occurrence of ``fragment`` in ``text`` at or
    after ``start``, ignoring case, curly-vs-straight quotes and differences in whitespace;
    None when it does not occur."""
    norm_frag, _ = _normalised(fragment.strip())
    if not norm_frag:
        return None
    norm, where = _normalised(text)
    first = next((k for k, i in enumerate(where) if i >= start), len(where))
    k = norm.find(norm_frag, first)
    if k < 0:
        return None
    return where[k], where[k + len(norm_frag) - 1] + 1


# --- FinalDataset.tsv -------------------------------------------------------------------------

def wu2024_source(prompt_id: str) -> tuple[str, str]:
    """(source, category) of a Wu et al. prompt ID.

    ``user_oriented_task_<n>`` -> ``("self-instruct", "")``, ``lima_author_<n>`` ->
    ``("lima", "")``, ``mtbench_<category>_<n>`` -> ``("mt-bench", <category>)``; an unknown
    prefix gives ``("", "")``.
    """
    for prefix, source in WU2024_SOURCES:
        if prompt_id.startswith(prefix):
            category = ""
            if source == "mt-bench":
                category = re.sub(r"_?\d+$", "", prompt_id[len(prefix):])
            return source, category
    return "", ""


def split_instruct_context(cell: str) -> tuple[list[str], str]:
    """(instruction fragments, context) of an ``Instruct&Context`` cell (already unescaped).

    The fragments come before the first ``&&&``, separated by ``|||`` or newlines; the context
    follows ``&&&`` (empty when there is none). Fragments are stripped; empty ones dropped.
    """
    head, sep, context = cell.partition("&&&")
    fragments = [f.strip() for f in _FRAGMENT_SPLIT.split(head)]
    return [f for f in fragments if f], context.strip() if sep else ""


@dataclass
class FragmentReport:
    """How the instruction fragments of a Wu et al. file were located in their prompts.

    ``fragments``: fragments that carry text (after dropping a bare ``Input:`` label);
    ``unmatched``: ``(prompt id, fragment)`` for each fragment not found in its prompt;
    ``no_span``: IDs of prompts that got no instruction span at all.
    """

    prompts: int = 0
    fragments: int = 0
    unmatched: list[tuple[str, str]] = field(default_factory=list)
    no_span: list[str] = field(default_factory=list)

    @property
    def with_span(self) -> int:
        """Prompts with at least one instruction span."""
        return self.prompts - len(self.no_span)

    def message(self, path) -> str:
        ids = list(dict.fromkeys(i for i, _ in self.unmatched))
        text = (f"{display_path(path)}: {len(self.unmatched)} of {self.fragments} instruction "
                f"fragments not found in their prompt")
        if ids:
            text += f" (first: {listed(ids)})"
        if self.no_span:
            text += (f"; {len(self.no_span)} prompts have no instruction span "
                     f"(first: {listed(self.no_span)})")
        return text


def instruction_spans_from_fragments(text: str, fragments: Sequence[str]
                                     ) -> tuple[tuple[tuple[int, int], ...], list[str]]:
    """(instruction spans, unmatched fragments) of a prompt.

    Each fragment is located in ``text`` with :func:`find_lenient` (its first occurrence; a
    leading ``Input:`` label is dropped and a fragment that is only the label is skipped); every
    sentence of :func:`sentence_spans` that the located range overlaps becomes an instruction
    span. Spans are returned sorted, one per sentence.
    """
    sentences = sentence_spans(text)
    marked: set[tuple[int, int]] = set()
    unmatched = []
    for fragment in fragments:
        core = _INPUT_LABEL.sub("", fragment.strip()).strip()
        if not core:
            continue
        found = find_lenient(text, core)
        if found is None:
            unmatched.append(fragment)
            continue
        a, b = found
        marked.update(s for s in sentences if s[0] < b and a < s[1])
    return tuple(sorted(marked)), unmatched


def _has_text(fragment: str) -> bool:
    return bool(_INPUT_LABEL.sub("", fragment.strip()).strip())


def read_wu2024(path: str | os.PathLike) -> tuple[list[InstructionPrompt], FragmentReport]:
    """The prompts of ``FinalDataset.tsv`` and a :class:`FragmentReport` (no warning)."""
    numbered, report = _read_wu2024(path)
    return [prompt for _, prompt in numbered], report


def _read_wu2024(path: str | os.PathLike
                 ) -> tuple[list[tuple[int, InstructionPrompt]], FragmentReport]:
    """:func:`read_wu2024` with the line of each prompt: ``[(line, prompt)]`` and the report."""
    p, text = read_text(path)
    prompts: list[tuple[int, InstructionPrompt]] = []
    report = FragmentReport()
    seen: dict[str, int] = {}
    for line, row in _tsv_records(p, text, WU2024_COLUMNS):
        pid = row["ID"].strip()
        if not pid:
            raise DataError("empty", path=display_path(p), line=line, field="ID")
        if pid in seen:
            raise DataError(f"duplicate ID {shown(pid)} (first on line {seen[pid]})",
                            path=display_path(p), line=line, field="ID")
        seen[pid] = line
        prompt = row["Prompt"]
        if not prompt.strip():
            raise DataError("empty", path=display_path(p), line=line, field="Prompt")
        fragments, context = split_instruct_context(row["Instruct&Context"])
        spans, unmatched = instruction_spans_from_fragments(prompt, fragments)
        report.prompts += 1
        report.fragments += sum(_has_text(f) for f in fragments)
        report.unmatched.extend((pid, f) for f in unmatched)
        if not spans:
            report.no_span.append(pid)
        source, category = wu2024_source(pid)
        prompts.append((line, InstructionPrompt(
            id=pid, text=prompt, instruction_spans=spans, source=source, category=category,
            context=context, response=row["Response"])))
    if not prompts:
        raise DataError("no prompts in file (header only)", path=display_path(p))
    return prompts, report


def load_wu2024(path: str | os.PathLike) -> list[InstructionPrompt]:
    """The prompts of the Wu et al. ``FinalDataset.tsv``, with their instruction spans.

    Columns ``ID``, ``Prompt``, ``Response`` and ``Instruct&Context``: tab-separated, one
    record per line, ``/n`` and ``/t`` inside cells meaning newline and tab, a cell optionally
    wrapped in ``"`` with ``""`` for a quote (see :func:`unwrap_cell`). ``source`` and (for
    MT-Bench) ``category`` come from the ID (see :func:`wu2024_source`), ``context`` from
    after ``&&&``, ``response`` from ``Response``.
    Instruction spans: see :func:`instruction_spans_from_fragments`. Fragments that cannot be
    found in their prompt are counted and reported with one ``warnings.warn`` (count and first
    IDs); a prompt with no located instruction keeps empty spans and is reported too, never
    dropped. Raises DataError (file, line, field) for a missing column, a row with the wrong
    number of cells, an empty or duplicate ID, or an empty prompt.
    """
    prompts, report = read_wu2024(path)
    if report.unmatched or report.no_span:
        warnings.warn(report.message(path), stacklevel=2)
    return prompts


# --- AnnotatedDataset.tsv ---------------------------------------------------------------------

def load_annotations(path: str | os.PathLike):
    """The ratings of the Wu et al. ``AnnotatedDataset.tsv`` as a pandas DataFrame.

    Columns ``File Model Prompt Reference Instruct Response Rating`` (text cells unescaped:
    ``/n`` and ``/t`` become newline and tab; ``Rating`` an int, -1 = unrated) plus ``id``: the
    ``File`` name without its ``.pkl`` suffix. That is how rows link to ``FinalDataset.tsv``: in
    the released files every ``File`` stem is a FinalDataset ID whose ``Prompt`` is identical
    to the row's. Raises DataError (file, line, field) for a missing column, a row with the
    wrong number of cells, an empty ``File`` or a rating that is not an integer.
    """
    import pandas as pd

    p, text = read_text(path)
    records = []
    for line, rec in _tsv_records(p, text, ANNOTATION_COLUMNS):
        rec["File"] = rec["File"].strip()
        if not rec["File"]:
            raise DataError("empty", path=display_path(p), line=line, field="File")
        try:
            rec["Rating"] = int(rec["Rating"].strip())
        except ValueError:
            raise DataError(f"must be an integer, got {shown(rec['Rating'])}", path=display_path(p),
                            line=line, field="Rating") from None
        rec["Model"] = rec["Model"].strip()
        rec["id"] = re.sub(r"\.pkl$", "", rec["File"])
        records.append(rec)
    return pd.DataFrame.from_records(records, columns=list(ANNOTATION_COLUMNS) + ["id"])


def followed_labels(df, model: str = "vicuna", min_tokens: int = 5, token_counts=None):
    """The rated responses of ``model`` with a boolean column ``followed``.

    Rows whose ``Model`` starts with ``model`` (case-insensitive, e.g. ``"vicuna"`` matches
    ``vicuna_7B``); unrated rows (rating -1, or anything outside 1-4) and responses of fewer
    than ``min_tokens`` tokens are dropped. ``followed`` is True for ratings 2-4 and False for
    1 (the response did not follow the instruction). Adds ``n_tokens``: the response's length.

    ``token_counts``: optional mapping ``id -> number of response tokens`` (e.g. the response
    pieces of the stored attributions). When given, ``n_tokens`` comes from it and rows whose
    ``id`` it lacks are dropped -- the selection of the study's released code, which counts the
    model's response tokens, not the rated text. Without it, ``n_tokens`` counts the
    whitespace-separated tokens of ``Response``.
    """
    rows = df[df["Model"].str.lower().str.startswith(model.lower())].copy()
    if token_counts is None:
        rows["n_tokens"] = rows["Response"].map(lambda r: len(str(r).split()))
    else:
        rows = rows[rows["id"].isin(list(token_counts))].copy()
        rows["n_tokens"] = rows["id"].map(lambda i: int(token_counts[i])).astype(int)
    rows = rows[rows["Rating"].between(1, 4) & (rows["n_tokens"] >= min_tokens)].copy()
    rows["followed"] = rows["Rating"] >= 2
    return rows.reset_index(drop=True)


# --- user JSONL and the built-in set ----------------------------------------------------------

def _optional_str(row: dict, name: str, path: Path, line: int, default: str = "") -> str:
    value = row.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise DataError(f"must be a string, got {shown(value)}", path=display_path(path), line=line,
                        field=name)
    return value


def _spans_from_substrings(prompt: str, value, path: Path, line: int) -> list[tuple[int, int]]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise DataError("must be a non-empty string or list of strings", path=display_path(path),
                        line=line, field="instruction")
    spans: list[tuple[int, int]] = []
    for k, sub in enumerate(items):
        if not isinstance(sub, str) or not sub.strip():
            raise DataError(f"item {k} must be a non-empty string, got {shown(sub)}",
                            path=display_path(path), line=line, field="instruction")
        sub = sub.strip()
        start = prompt.find(sub)
        # A repeated substring marks its next unused occurrence.
        while start >= 0 and any(a < start + len(sub) and start < b for a, b in spans):
            start = prompt.find(sub, start + 1)
        if start < 0:
            what = "not found in the prompt" if sub not in prompt else \
                "occurs in the prompt fewer times than it is listed"
            raise DataError(f"item {k} {shown(sub)} {what}", path=display_path(path), line=line,
                            field="instruction")
        spans.append((start, start + len(sub)))
    return spans


def _explicit_spans(prompt: str, value, path: Path, line: int) -> list[tuple[int, int]]:
    if not isinstance(value, list) or not value:
        raise DataError("must be a non-empty list of [start, end] pairs", path=display_path(path),
                        line=line, field="instruction_spans")
    spans = []
    for k, span in enumerate(value):
        ok = (isinstance(span, list) and len(span) == 2
              and all(isinstance(x, int) and not isinstance(x, bool) for x in span))
        if not ok:
            raise DataError(f"item {k} must be a [start, end] pair of integers, got {shown(span)}",
                            path=display_path(path), line=line, field="instruction_spans")
        a, b = span
        if not 0 <= a < b <= len(prompt):
            raise DataError(f"item {k} [{a}, {b}] is not a non-empty range inside the prompt of "
                            f"{len(prompt)} characters", path=display_path(path), line=line,
                            field="instruction_spans")
        spans.append((a, b))
    return spans


def load_instruction_jsonl(path: str | os.PathLike, default_source: str = ""
                           ) -> list[InstructionPrompt]:
    """Prompts with marked instructions from a JSONL file, one object per line::

        {"id": "sum-1", "prompt": "Summarize the text below.\\nInput: ...",
         "instruction": ["Summarize the text below."],        # or a single string
         "context": "...", "source": "...", "category": "writing", "response": "..."}

    ``prompt`` is required; the instruction is given either as ``instruction`` (substrings of
    the prompt, each marked at its first unused exact occurrence) or as ``instruction_spans``
    (``[[start, end], ...]`` character ranges, end exclusive), not both. ``id`` defaults to
    ``"<file stem>-<line>"``; ``context``, ``source``, ``category`` and ``response`` are
    optional strings. Raises DataError naming file, line and field for invalid JSON, a missing
    or empty prompt, an instruction substring not found in the prompt, a bad span, a duplicate
    id or an empty file.
    """
    return [prompt for _, prompt in _numbered_jsonl(path, default_source)]


def _numbered_jsonl(path: str | os.PathLike, default_source: str = ""
                    ) -> list[tuple[int, InstructionPrompt]]:
    """:func:`load_instruction_jsonl` with the line of each prompt: ``[(line, prompt)]``."""
    p, text = read_text(path)
    prompts: list[tuple[int, InstructionPrompt]] = []
    seen: dict[str, int] = {}
    for line, row in json_objects(p, text):
        prompt = row.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            what = ("missing" if prompt is None
                    else f"must be a non-empty string, got {shown(prompt)}")
            raise DataError(what, path=display_path(p), line=line, field="prompt")
        pid = row.get("id", f"{p.stem}-{line}")
        if isinstance(pid, int) and not isinstance(pid, bool):
            pid = str(pid)
        if not isinstance(pid, str) or not pid.strip():
            raise DataError(f"must be a non-empty string, got {shown(pid)}",
                            path=display_path(p), line=line, field="id")
        if pid in seen:
            raise DataError(f"duplicate id {shown(pid)} (first on line {seen[pid]})",
                            path=display_path(p), line=line, field="id")
        seen[pid] = line
        has_sub, has_spans = row.get("instruction") is not None, \
            row.get("instruction_spans") is not None
        if has_sub and has_spans:
            raise DataError("give either 'instruction' or 'instruction_spans', not both",
                            path=display_path(p), line=line, field="instruction_spans")
        if has_sub:
            spans = _spans_from_substrings(prompt, row["instruction"], p, line)
        elif has_spans:
            spans = _explicit_spans(prompt, row["instruction_spans"], p, line)
        else:
            raise DataError("missing: give 'instruction' (substrings of the prompt) or "
                            "'instruction_spans' ([[start, end], ...])", path=display_path(p),
                            line=line, field="instruction")
        prompts.append((line, InstructionPrompt(
            id=pid, text=prompt, instruction_spans=tuple(sorted(spans)),
            source=_optional_str(row, "source", p, line, default_source),
            category=_optional_str(row, "category", p, line),
            context=_optional_str(row, "context", p, line),
            response=_optional_str(row, "response", p, line))))
    if not prompts:
        raise DataError("no prompts in file (empty)", path=display_path(p))
    return prompts


def numbered_instructions(path: str | os.PathLike, default_source: str = ""
                          ) -> list[tuple[int, InstructionPrompt]]:
    """``(line, prompt)`` for each prompt of an instruction file, in file order: a Wu et al.
    ``.tsv`` read as :func:`read_wu2024` reads it (no warning), any other file as
    :func:`load_instruction_jsonl` does."""
    if Path(path).suffix.lower() == ".tsv":
        return _read_wu2024(path)[0]
    return _numbered_jsonl(path, default_source)


def builtin_instructions_path() -> Path:
    """The JSONL file of the built-in instruction prompts (inside the installed package)."""
    return Path(str(resources.files("tunescope.data").joinpath("builtin", "instructions.jsonl")))


@functools.lru_cache(maxsize=1)
def _builtin() -> tuple[InstructionPrompt, ...]:
    return tuple(load_instruction_jsonl(builtin_instructions_path(), default_source="builtin"))


def builtin_instructions() -> list[InstructionPrompt]:
    """The built-in set: 66 prompts written for tunescope, 11 in each category of
    :data:`BUILTIN_CATEGORIES` (writing, math, coding, translation, classification, qa).

    Each marks its instruction part. 34 carry a separate input after an ``Input:`` line and 10
    more open with background before the instruction: those 44 hold that text in ``context``.
    16 have several instruction spans (e.g. an instruction before and a constraint after the
    input) and 36 span several lines. ``source`` is ``"builtin"``.
    """
    return list(_builtin())


# --- token masks ------------------------------------------------------------------------------

def instruction_mask(prompt: InstructionPrompt, offsets) -> list[bool]:
    """Per token: True when its character range overlaps an instruction span of ``prompt``.

    ``offsets`` are ``(start, end)`` character ranges into ``prompt.text``, one per token, as
    a fast tokenizer's ``offset_mapping`` gives them; empty ranges (special tokens have
    ``(0, 0)``) are never instruction tokens.
    """
    spans = prompt.instruction_spans
    mask = []
    for start, end in offsets:
        start, end = int(start), int(end)
        mask.append(end > start and any(start < b and a < end for a, b in spans))
    return mask


def instruction_mask_for(tokenizer, prompt: InstructionPrompt) -> tuple[list[int], list[bool]]:
    """(input ids, instruction mask) of ``prompt.text`` encoded by a fast tokenizer (with its
    special tokens, e.g. BOS, which are never instruction tokens)."""
    if not getattr(tokenizer, "is_fast", False):
        raise TunescopeError("instruction masks need a fast tokenizer (character offsets); "
                             f"{type(tokenizer).__name__} is not one")
    enc = tokenizer(prompt.text, return_offsets_mapping=True)
    return list(enc["input_ids"]), instruction_mask(prompt, enc["offset_mapping"])
