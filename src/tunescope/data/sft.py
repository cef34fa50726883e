"""Instruction-tuning (SFT) data for ``tunescope tune``: user files and a built-in set.

* :class:`SFTExample` is one chat: ``messages`` (system/user/assistant turns ending in an
  assistant turn, with at least one user turn), a ``category`` and a ``split``.
* :func:`load_sft` reads a user's ``.jsonl`` (rows ``{"instruction", "input", "response"}``,
  ``"output"`` accepted for ``"response"`` as in Alpaca files, or ``{"messages": [...]}``),
  ``.csv`` or ``.tsv`` file (header naming ``instruction`` and ``response``).
* :func:`builtin_sft` is a set of 1,523 examples written for tunescope by
  ``scripts/make_sft_set.py`` (writing, rewriting, classification, extraction, arithmetic,
  lists and short QA; 100 of them held out), with no encyclopedic facts of the kind ParaRel
  probes.

Every malformed row raises :class:`~tunescope.errors.DataError` naming file, line and field.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from tunescope.data.files import csv_rows, display_path, json_objects, read_text, shown
from tunescope.errors import DataError, TunescopeError

ROLES = ("system", "user", "assistant")
"""The roles a chat message may have."""

SPLITS = ("train", "heldout")
"""The splits an example may belong to: ``heldout`` examples are kept out of training (e.g. to
check that a tuned model answers an instruction rather than continuing its text)."""

CSV_COLUMNS = ("instruction", "input", "response", "id", "category", "split")
"""The columns a CSV/TSV file may have (``instruction`` and ``response`` are required;
``output`` is read as ``response``); other columns are ignored."""


@dataclass(frozen=True)
class SFTExample:
    """One instruction-tuning example: a chat whose last turn is the answer to learn.

    ``messages``: ``{"role": "system" | "user" | "assistant", "content": str}`` dicts in
    order, ending with an assistant turn and holding at least one user turn. ``category``: a
    free label (``""`` when none); ``split``: one of :data:`SPLITS`.
    """

    id: str
    messages: tuple[dict, ...]
    category: str = ""
    split: str = "train"

    @property
    def instruction(self) -> str:
        """The content of the first user message."""
        return next(m["content"] for m in self.messages if m["role"] == "user")

    @property
    def response(self) -> str:
        """The content of the last assistant message (the last message)."""
        return self.messages[-1]["content"]

    @classmethod
    def from_fields(cls, id: str, instruction: str, input: str, response: str, *,
                    category: str = "", split: str = "train") -> SFTExample:
        """The example of an instruction, an optional input and a response: one user message
        (``instruction``, or ``instruction + "\\n\\n" + input`` when ``input`` is not empty)
        and one assistant message (``response``)."""
        prompt = f"{instruction}\n\n{input}" if input else instruction
        return cls(id, ({"role": "user", "content": prompt},
                        {"role": "assistant", "content": response}), category, split)


# --- reading rows ----------------------------------------------------------------------------

def _text(row: dict, name: str, path: Path, line: int, *, required: bool = True,
          empty_ok: bool = False) -> str:
    """The stripped string ``row[name]``; DataError when it is missing (and required), not a
    string, or blank (unless ``empty_ok``). An absent optional field gives ``""``."""
    value = row.get(name)
    if value is None:
        if required:
            raise DataError("missing", path=display_path(path), line=line, field=name)
        return ""
    if not isinstance(value, str) or not (value.strip() or empty_ok):
        need = "a string" if empty_ok else "a non-empty string"
        raise DataError(f"must be {need}, got {shown(value)}", path=display_path(path),
                        line=line, field=name)
    return value.strip()


def _response_field(row: dict, path: Path, line: int) -> str:
    """``"response"``, or ``"output"`` (the Alpaca name) when only that is given."""
    has_response, has_output = row.get("response") is not None, row.get("output") is not None
    if has_response and has_output:
        raise DataError("give either 'response' or 'output', not both",
                        path=display_path(path), line=line, field="output")
    return "output" if has_output else "response"


def _messages(value, path: Path, line: int) -> tuple[dict, ...]:
    """Validated chat messages (content stripped, other keys dropped)."""
    where = {"path": display_path(path), "line": line}
    if not isinstance(value, list) or not value:
        raise DataError(f"must be a non-empty list of messages, got {shown(value)}",
                        field="messages", **where)
    messages = []
    for k, message in enumerate(value):
        if not isinstance(message, dict):
            raise DataError(f"must be an object with 'role' and 'content', got {shown(message)}",
                            field=f"messages[{k}]", **where)
        role = message.get("role")
        if role not in ROLES:
            got = "missing" if role is None else f"got {shown(role)}"
            raise DataError(f"unknown role ({got}); expected system, user or assistant",
                            field=f"messages[{k}].role", **where)
        if role == "system" and k > 0:
            raise DataError("a system message may only come first",
                            field=f"messages[{k}].role", **where)
        content = message.get("content")
        if not isinstance(content, str) or not content.strip():
            what = ("missing" if content is None
                    else f"must be a non-empty string, got {shown(content)}")
            raise DataError(what, field=f"messages[{k}].content", **where)
        messages.append({"role": role, "content": content.strip()})
    if messages[-1]["role"] != "assistant":
        raise DataError(f"must end with an assistant turn, got a {messages[-1]['role']!r} turn "
                        f"last", field="messages", **where)
    if not any(m["role"] == "user" for m in messages):
        raise DataError("has no user turn", field="messages", **where)
    return tuple(messages)


def _example(row: dict, path: Path, line: int, seen: dict[str, int]) -> SFTExample:
    """The example of one record (a JSONL object or a CSV/TSV row as a dict)."""
    where = {"path": display_path(path), "line": line}
    sid = row.get("id")
    if sid is None:
        sid = f"{path.stem}-{line}"
    if isinstance(sid, int) and not isinstance(sid, bool):
        sid = str(sid)
    if not isinstance(sid, str) or not sid.strip():
        raise DataError(f"must be a non-empty string, got {shown(sid)}", field="id", **where)
    sid = sid.strip()
    if sid in seen:
        raise DataError(f"duplicate id {shown(sid)} (first on line {seen[sid]})", field="id",
                        **where)
    category = _text(row, "category", path, line, required=False, empty_ok=True)
    split = _text(row, "split", path, line, required=False, empty_ok=True) or "train"
    if split not in SPLITS:
        raise DataError(f"must be 'train' or 'heldout', got {shown(split)}", field="split",
                        **where)
    if row.get("messages") is not None:
        clash = [n for n in ("instruction", "input", "response", "output")
                 if row.get(n) is not None]
        if clash:
            raise DataError(f"give either 'messages' or instruction/response fields, not both "
                            f"(also has '{clash[0]}')", field="messages", **where)
        example = SFTExample(sid, _messages(row["messages"], path, line), category, split)
    elif "instruction" not in row:
        raise DataError("missing: give 'instruction' and 'response', or 'messages'",
                        field="instruction", **where)
    else:
        instruction = _text(row, "instruction", path, line)
        given = _text(row, "input", path, line, required=False, empty_ok=True)
        response = _text(row, _response_field(row, path, line), path, line)
        example = SFTExample.from_fields(sid, instruction, given, response, category=category,
                                         split=split)
    seen[sid] = line
    return example


def _csv_rows(path: Path, text: str, delimiter: str) -> Iterator[tuple[int, dict]]:
    """(line, record) of each data row of a CSV/TSV text: the line where the record starts (a
    quoted cell may span lines). The answer is read from the ``response`` column, or from
    ``output`` when there is no ``response`` column; empty cells of optional columns read as
    absent."""
    where = display_path(path)
    header: list[str] | None = None
    answer = "response"
    for start, row in csv_rows(path, text, delimiter):
        if header is None:
            header = [cell.strip().lower() for cell in row]
            answer = "output" if "output" in header and "response" not in header \
                else "response"
            missing = [c for c in ("instruction", answer) if c not in header]
            if missing:
                raise DataError(f"header needs columns instruction and response (or "
                                f"output), got {shown(header)}", path=where, line=start,
                                field=missing[0])
            continue
        record: dict = {}
        for i, name in enumerate(header):
            cell = row[i] if i < len(row) else None
            if name in ("instruction", answer):
                record[name] = cell
            elif name in CSV_COLUMNS and cell is not None and cell.strip():
                record[name] = cell
        yield start, record


def load_sft(path: str | os.PathLike, *, max_examples: int | None = None) -> list[SFTExample]:
    """Instruction-tuning examples from a ``.jsonl``, ``.csv`` or ``.tsv`` file (by extension).

    JSONL: one object per line, either ``{"instruction", "input" (optional), "response"}``
    (``"output"`` is accepted instead of ``"response"``) or ``{"messages": [{"role",
    "content"}, ...]}``; optional ``"id"``, ``"category"`` and ``"split"`` (``train``, the
    default, or ``heldout``). CSV/TSV: a header naming ``instruction`` and ``response`` (or
    ``output``), optionally ``input``, ``id``, ``category`` and ``split``; line numbers count
    the header as line 1. Missing ids become ``"<file stem>-<line>"``. Texts are stripped.

    ``max_examples``: keep only the first N examples (the whole file is still checked).

    Raises DataError naming file, line and field for an unknown extension, a file that is
    missing, not UTF-8 or empty, invalid JSON, a missing field, a value of the wrong type, an
    empty text, an unknown role, messages that do not end in an assistant turn or have no
    user turn, an unknown split, and a duplicate id.
    """
    if max_examples is not None and (isinstance(max_examples, bool)
                                     or not isinstance(max_examples, int) or max_examples < 1):
        raise TunescopeError(f"max_examples must be a positive integer, got {max_examples!r}")
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".jsonl", ".csv", ".tsv"):
        kind = shown(suffix) if suffix else "(no extension)"
        raise DataError(f"unknown instruction-tuning format {kind}: expected .jsonl, .csv or "
                        f".tsv", path=display_path(p))
    p, text = read_text(p)
    rows = (json_objects(p, text) if suffix == ".jsonl"
            else _csv_rows(p, text, "\t" if suffix == ".tsv" else ","))
    seen: dict[str, int] = {}
    examples = [_example(row, p, line, seen) for line, row in rows]
    if not examples:
        what = "empty" if suffix == ".jsonl" else "empty or header only"
        raise DataError(f"no examples in file ({what})", path=display_path(p))
    return examples[:max_examples] if max_examples is not None else examples


# --- the built-in set ------------------------------------------------------------------------

def builtin_sft_path() -> Path:
    """The JSONL file of the built-in instruction-tuning set (inside the installed package)."""
    return Path(str(resources.files("tunescope.data").joinpath("builtin", "sft.jsonl")))


@functools.lru_cache(maxsize=1)
def _builtin() -> tuple[SFTExample, ...]:
    return tuple(load_sft(builtin_sft_path()))


def builtin_sft(split: str | None = None) -> list[SFTExample]:
    """The built-in instruction-tuning set, written for tunescope (see the module docstring).

    ``split``: None for every example, else ``"train"`` (1,423 examples) or ``"heldout"``
    (100, spread over all categories).
    """
    if split is not None and split not in SPLITS:
        raise TunescopeError(f"unknown split {split!r}; expected 'train', 'heldout' or None")
    return [e for e in _builtin() if split is None or e.split == split]
