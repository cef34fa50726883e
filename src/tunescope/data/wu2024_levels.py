"""The stored attribution levels of the Wu et al. 2024 release (W1), and their instruction masks.

The release holds, per model, ``<model>_levels.npz`` (one integer matrix per prompt ID: prompt
tokens x response tokens, already scaled to levels 0-10 with no threshold) and
``<model>_tokens.jsonl`` (per ID: the SentencePiece pieces of the prompt, without BOS, and of the
response, and the matrix shape). :func:`load_levels` reads and validates both;
:func:`piece_instruction_mask` marks the prompt pieces that fall in the instruction spans of the
matching :class:`~tunescope.data.types.InstructionPrompt`.
"""

from __future__ import annotations

import codecs
import difflib
import io
import os
import re
import warnings
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tunescope.data.files import (
    display_path,
    json_objects,
    listed,
    one_line,
    read_bytes,
    read_text,
    shown,
)
from tunescope.data.types import InstructionPrompt
from tunescope.errors import DataError

SPACE = "\u2581"
"""SentencePiece's word-boundary marker ``▁``, decoded as a space."""

_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")
_CONTROL_PIECES = frozenset({"<s>", "</s>", "<unk>", "<pad>"})


@dataclass(frozen=True, eq=False)
class StoredAttribution:
    """One prompt's stored attribution levels.

    ``levels``: integer array ``[P, R]`` (prompt pieces x response pieces), values 0-10;
    ``prompt_pieces`` (``P`` pieces, no BOS) and ``response_pieces`` (``R`` pieces) are
    SentencePiece pieces (``▁`` = space, ``<0x0A>`` = newline, ``<0xNN>`` = a byte).
    """

    id: str
    levels: np.ndarray
    prompt_pieces: tuple[str, ...]
    response_pieces: tuple[str, ...]

    @property
    def prompt_text(self) -> str:
        """The prompt decoded from its pieces (with SentencePiece's leading space)."""
        return decode_pieces(self.prompt_pieces)[0]

    @property
    def response_text(self) -> str:
        """The response decoded from its pieces."""
        return decode_pieces(self.response_pieces)[0]


def decode_pieces(pieces: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """(text, character range of each piece in it) of SentencePiece pieces.

    ``▁`` becomes a space; runs of byte pieces ``<0xNN>`` are decoded as UTF-8 (a byte that
    starts or continues a multi-byte character gets the range of that character; invalid bytes
    decode to U+FFFD); ``<s>``, ``</s>``, ``<unk>`` and ``<pad>`` decode to nothing.
    """
    out: list[str] = []
    ranges: list[tuple[int, int]] = []
    pos = 0
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending: list[int] = []  # byte pieces whose character is not complete yet

    def emit(text: str, owners: list[int]):
        nonlocal pos
        out.append(text)
        for k in owners:
            ranges[k] = (pos, pos + len(text))
        pos += len(text)

    for k, piece in enumerate(pieces):
        ranges.append((pos, pos))
        m = _BYTE_PIECE.fullmatch(piece)
        if m:
            text = decoder.decode(bytes([int(m.group(1), 16)]))
            pending.append(k)
            if text:
                emit(text, pending)
                pending = []
            continue
        if pending:
            emit(decoder.decode(b"", final=True), pending)
            pending = []
            ranges[k] = (pos, pos)
        decoder.reset()
        text = "" if piece in _CONTROL_PIECES else piece.replace(SPACE, " ")
        emit(text, [k])
    if pending:
        emit(decoder.decode(b"", final=True), pending)
    return "".join(out), ranges


def _char_map(a: str, b: str) -> list[int | None]:
    """For each character of ``a``, its position in ``b`` (None where it has none).

    Walks both strings together, treating any whitespace as equal and skipping whitespace that
    only one side has; at the first other difference it aligns the non-whitespace characters
    of the two strings with difflib (case-insensitive) instead.
    """
    m: list[int | None] = [None] * len(a)
    i = j = 0
    while i < len(a) and j < len(b):
        ca, cb = a[i], b[j]
        if ca == cb or (ca.isspace() and cb.isspace()):
            m[i] = j
            i += 1
            j += 1
        elif ca.isspace():
            i += 1
        elif cb.isspace():
            j += 1
        else:
            break
    else:
        return m
    ia = [k for k, c in enumerate(a) if not c.isspace()]
    jb = [k for k, c in enumerate(b) if not c.isspace()]
    sa = "".join(a[k] for k in ia).lower()
    sb = "".join(b[k] for k in jb).lower()
    m = [None] * len(a)
    matcher = difflib.SequenceMatcher(None, sa, sb, autojunk=False)
    for x, y, n in matcher.get_matching_blocks():
        for d in range(n):
            m[ia[x + d]] = jb[y + d]
    return m


def piece_offsets(pieces: Sequence[str], text: str) -> list[tuple[int, int] | None]:
    """The character range ``[start, end)`` in ``text`` of each piece, or None for a piece
    with no counterpart there (e.g. SentencePiece's leading space).

    The pieces' decoded text may differ slightly from ``text`` (whitespace, a dropped or
    changed character): both are walked together with whitespace normalised, falling back to
    a difflib alignment of their non-whitespace characters at the first real difference.
    """
    decoded, ranges = decode_pieces(pieces)
    cmap = _char_map(decoded, text)
    result: list[tuple[int, int] | None] = []
    for s, e in ranges:
        hits = [cmap[i] for i in range(s, e) if cmap[i] is not None]
        result.append((min(hits), max(hits) + 1) if hits else None)
    return result


def piece_instruction_mask(pieces: Sequence[str], prompt: InstructionPrompt) -> np.ndarray:
    """Bool array ``[P]``: True for each prompt piece whose aligned character range (see
    :func:`piece_offsets`) overlaps an instruction span of ``prompt``."""
    spans = prompt.instruction_spans
    mask = np.zeros(len(pieces), dtype=bool)
    for k, r in enumerate(piece_offsets(pieces, prompt.text)):
        if r is not None:
            s, e = r
            mask[k] = any(s < b and a < e for a, b in spans)
    return mask


# --- loading ----------------------------------------------------------------------------------

def _open_npz(path: Path):
    """The archive at ``path`` opened with ``allow_pickle=False``; DataError when it is not
    an ``.npz`` (zip) archive of arrays."""
    path, data = read_bytes(path, "an .npz archive")
    where = display_path(path)
    if data.startswith(b"\x93NUMPY"):
        raise DataError("expected an .npz archive of named matrices, got a single array (.npy)",
                        path=where)
    if not data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        raise DataError("cannot read as an .npz archive: no zip signature at the start",
                        path=where)
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as e:
        reason = one_line(e)[:120] or type(e).__name__
        raise DataError(f"cannot read as a NumPy archive ({reason})", path=where) from None


def _matrix(z, pid: str, path: Path) -> np.ndarray:
    """Member ``pid`` of the archive as an array; DataError for a member that is damaged, not
    an ``.npy`` array, or an array of Python objects (pickled, never loaded)."""
    where = display_path(path)
    try:
        arr = z[pid]
    except ValueError as e:
        if "pickle" in str(e).lower() or "object arrays" in str(e).lower():
            raise DataError(f"cannot read matrix {shown(pid)}: it holds Python objects "
                            "(pickled data), which tunescope never loads", path=where) from None
        raise DataError(f"cannot read matrix {shown(pid)} ({one_line(e)[:120]})",
                        path=where) from None
    except (OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
        reason = one_line(e)[:120] or type(e).__name__
        raise DataError(f"cannot read matrix {shown(pid)} ({reason})", path=where) from None
    if not isinstance(arr, np.ndarray):  # a member that is not an .npy file comes back as bytes
        raise DataError(f"cannot read matrix {shown(pid)}: the archive member is not a NumPy "
                        "array", path=where)
    return arr


def _pieces(row: dict, name: str, path: Path, line: int) -> tuple[str, ...]:
    value = row.get(name)
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        what = "missing" if value is None else "must be a list of strings"
        raise DataError(what, path=display_path(path), line=line, field=name)
    return tuple(value)


def load_levels(npz_path: str | os.PathLike, tokens_jsonl_path: str | os.PathLike,
                max_level: int = 10) -> dict[str, StoredAttribution]:
    """The stored attribution levels of one model, by prompt ID, in the order of the JSONL.

    ``tokens_jsonl_path`` rows: ``{"id", "input_tokens", "output_tokens", "shape"}``; the
    ``.npz`` holds one integer matrix per ID, read with ``allow_pickle=False``. Validated: the
    matrix exists, its shape equals the row's ``shape`` and ``[len(input_tokens),
    len(output_tokens)]``, it holds integers in ``0..max_level``. A prompt with an empty
    response may be stored as a 1-D empty matrix (shape ``[0]``): it becomes ``[P, 0]``.
    Raises DataError naming file, line and field; matrices without a JSONL row are reported
    with one warning.
    """
    jpath, text = read_text(tokens_jsonl_path)
    where = display_path(jpath)
    npath = Path(npz_path)
    z = _open_npz(npath)
    out: dict[str, StoredAttribution] = {}
    seen: dict[str, int] = {}
    try:
        keys = set(z.files)
        for line, row in json_objects(jpath, text):
            pid = row.get("id")
            if not isinstance(pid, str) or not pid:
                raise DataError("missing" if pid is None else f"must be a non-empty string, "
                                f"got {shown(pid)}", path=where, line=line, field="id")
            if pid in seen:
                raise DataError(f"duplicate id {shown(pid)} (first on line {seen[pid]})",
                                path=where, line=line, field="id")
            seen[pid] = line
            prompt_pieces = _pieces(row, "input_tokens", jpath, line)
            response_pieces = _pieces(row, "output_tokens", jpath, line)
            shape = row.get("shape")
            if not (isinstance(shape, list)
                    and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0
                            for x in shape)):
                raise DataError("missing" if shape is None else f"must be a list of "
                                f"non-negative integers, got {shown(shape)}", path=where,
                                line=line, field="shape")
            if pid not in keys:
                raise DataError(f"no matrix for id {shown(pid)} in {display_path(npath)}",
                                path=where, line=line, field="id")
            arr = _matrix(z, pid, npath)
            if list(arr.shape) != shape:
                raise DataError(f"matrix {shown(pid)} in {display_path(npath.name)} has shape "
                                f"{list(arr.shape)}", path=where, line=line, field="shape")
            P, R = len(prompt_pieces), len(response_pieces)
            if arr.ndim != 2:
                if arr.size == 0 and R == 0:
                    arr = np.zeros((P, 0), dtype=arr.dtype if arr.dtype.kind in "iu"
                                   else np.uint8)
                else:
                    raise DataError(f"matrix {shown(pid)} must be 2-D (prompt x response "
                                    f"tokens), got shape {list(arr.shape)}", path=where,
                                    line=line, field="shape")
            if arr.shape[0] != P:
                raise DataError(f"{P} prompt pieces but the matrix has {arr.shape[0]} rows",
                                path=where, line=line, field="input_tokens")
            if arr.shape[1] != R:
                raise DataError(f"{R} response pieces but the matrix has {arr.shape[1]} "
                                f"columns", path=where, line=line, field="output_tokens")
            if arr.dtype.kind not in "iub":
                raise DataError(f"matrix {shown(pid)} must hold integer levels, got {arr.dtype}",
                                path=display_path(npath))
            if arr.size and (arr.min() < 0 or arr.max() > max_level):
                raise DataError(f"matrix {shown(pid)} holds levels outside 0..{max_level} "
                                f"({arr.min()}..{arr.max()})", path=display_path(npath))
            out[pid] = StoredAttribution(pid, arr, prompt_pieces, response_pieces)
        extra = keys - set(seen)
    finally:
        z.close()
    if not out:
        raise DataError("no rows in file (empty)", path=where)
    if extra:
        warnings.warn(f"{display_path(npath)}: {len(extra)} matrices have no row in "
                      f"{display_path(jpath.name)} (first: {listed(sorted(extra))}); they are "
                      "ignored", stacklevel=2)
    return out
