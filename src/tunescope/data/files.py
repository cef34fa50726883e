"""Reading users' data files: UTF-8 text, JSON Lines and plain lines, with errors that name
file and line in one line of text.

Every loader reads through :func:`read_text` (so a missing file, a directory, a bad path or
bytes that are not UTF-8 all give the same :class:`~tunescope.errors.DataError`) and quotes
users' values in its messages with :func:`shown` (one line, at most a few dozen characters).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tunescope.errors import DataError

SHOWN_LIMIT = 60
"""Longest quotation of a user's value in an error message (characters)."""


def shown(value, limit: int = SHOWN_LIMIT) -> str:
    """``repr(value)`` cut to ``limit`` characters: always one line (``repr`` escapes line
    breaks and other control characters in strings)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def listed(values, limit: int = 5) -> str:
    """The first ``limit`` values quoted with :func:`shown`, comma-separated, with
    ``..., (N in all)`` when there are more."""
    values = list(values)
    text = ", ".join(shown(v) for v in values[:limit])
    return text + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def one_line(text) -> str:
    """``text`` (e.g. an exception's message) with every run of whitespace made one space."""
    return " ".join(str(text).split())


def display_path(path: str | os.PathLike) -> str:
    """``path`` as text for messages: control characters (a newline or NUL in a file name)
    written as escapes, so the message stays one line."""
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "backslashreplace")
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


_RECORDERS: list[list] = []
"""The open :func:`recording` lists (each gets every file read while it is open)."""


@contextmanager
def recording() -> Iterator[list[tuple[Path, bytes]]]:
    """Collect ``(path, contents)`` of every file read through :func:`read_bytes` (so every
    loader's reads) inside the ``with`` block: the files a dataset was actually made from."""
    reads: list[tuple[Path, bytes]] = []
    _RECORDERS.append(reads)
    try:
        yield reads
    finally:
        _RECORDERS.remove(reads)


@contextmanager
def file_errors(path: str | os.PathLike, what: str = "a file") -> Iterator[None]:
    """Turn the OS errors of opening or reading ``path`` inside the block into one-line
    DataErrors naming the path (missing, a directory, a parent that is not a directory,
    permission, other OS errors, an invalid path). ``what`` names the expected kind of file
    (with its article) in the message for a directory, e.g. ``"an .npz archive"``."""
    where = display_path(Path(path))
    try:
        yield
    except FileNotFoundError:
        raise DataError("no such file", path=where) from None
    except IsADirectoryError:
        raise DataError(f"is a directory, expected {what}", path=where) from None
    except NotADirectoryError:
        raise DataError("no such file (a parent of it is not a directory)", path=where) from None
    except PermissionError:
        raise DataError("permission denied", path=where) from None
    except OSError as e:
        raise DataError(f"cannot read file: {one_line(e.strerror or e)}", path=where) from None
    except ValueError as e:  # e.g. a NUL byte in the path
        raise DataError(f"invalid path ({one_line(e)})", path=where) from None


def read_bytes(path: str | os.PathLike, what: str = "a file") -> tuple[Path, bytes]:
    """(path, contents) of a file; DataError for a missing, unreadable or invalid path
    (:func:`file_errors`)."""
    p = Path(path)
    with file_errors(p, what):
        data = p.read_bytes()
    for reads in _RECORDERS:
        reads.append((p, data))
    return p, data


def format_document(path: Path, what: str, format: str) -> dict | None:
    """The JSON object in ``path`` whose ``"format"`` is ``format`` (a file tunescope wrote:
    ``what`` names it in errors, e.g. ``"tuning recipe"``), or None when there is no such file;
    a one-line DataError for an unreadable file, invalid JSON or another format."""
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read the {what}: {e}", path=str(path)) from None
    found = stored.get("format") if isinstance(stored, dict) else None
    if found != format:
        raise DataError(f"not a tunescope {what} (format {found!r}; {format!r} expected)",
                        path=str(path))
    return stored


_OTHER_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32-LE"), (codecs.BOM_UTF32_BE, "UTF-32-BE"),
               (codecs.BOM_UTF16_LE, "UTF-16-LE"), (codecs.BOM_UTF16_BE, "UTF-16-BE"))
"""Byte-order marks of the Unicode encodings that are not UTF-8 (UTF-32-LE's begins with
UTF-16-LE's, so it comes first)."""


def foreign_encoding(data: bytes) -> str | None:
    """Why ``data`` is not UTF-8 text although it may decode as such, or None: a UTF-16 or
    UTF-32 byte-order mark, or a NUL byte (valid UTF-8, but no text file holds one, while
    UTF-16 text has one in every ASCII character and binary files have many)."""
    for bom, encoding in _OTHER_BOMS:
        if data.startswith(bom):
            return (f"not UTF-8 text (it starts with a {encoding} byte-order mark; tunescope "
                    f"reads UTF-8: convert it, e.g. iconv -f {encoding[:6]} -t UTF-8)")
    nul = data.find(b"\0")
    if nul >= 0:
        return f"not UTF-8 text (NUL byte at byte {nul}; UTF-16 or a binary file?)"
    return None


def read_text(path: str | os.PathLike, what: str = "a file") -> tuple[Path, str]:
    """(path, UTF-8 text) of a file, a leading UTF-8 byte-order mark dropped; DataError for a
    missing or unreadable file, and for one that is not UTF-8 text: a UTF-16/UTF-32 file (with
    or without a byte-order mark), a binary file, or bytes that do not decode (naming the first
    bad byte's offset)."""
    p, data = read_bytes(path, what)
    reason = foreign_encoding(data)
    if reason is not None:
        raise DataError(reason, path=display_path(p))
    try:
        return p, data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"not UTF-8 text ({e.reason} at byte {e.start})",
                        path=display_path(p)) from None


def text_lines(text: str) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without its CR/LF) for each line of ``text``.

    Lines end at ``\\n`` (a ``\\r`` before it is dropped), the convention of
    :func:`json_objects`; other Unicode line separators stay inside a line.
    """
    for lineno, line in enumerate(text.split("\n"), start=1):
        yield lineno, line.removesuffix("\r")


def json_value(text: str, path: Path, lineno: int | None = None):
    """The JSON value of ``text``: one line of a JSONL file (``lineno`` given) or a whole JSON
    file; DataError naming file and line when it is not valid JSON."""
    line = lineno
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        message = f"invalid JSON ({e.msg}, column {e.colno})"
        line = lineno if lineno is not None else e.lineno
    except RecursionError:
        message = "invalid JSON (nested too deeply)"
    except ValueError as e:
        reason = one_line(e)
        if "digits" in reason:  # Python's limit on the digits of an integer
            reason = "an integer of more than 4300 digits"
        message = f"invalid JSON ({reason[:120]})"
    raise DataError(message, path=display_path(path), line=line)


def json_objects(path: Path, text: str) -> Iterator[tuple[int, dict]]:
    """(1-based line number, object) for each non-blank line of a JSONL text; DataError
    naming file and line for a line that is not a JSON object."""
    for lineno, line in text_lines(text):
        line = line.strip()
        if not line:
            continue
        row = json_value(line, path, lineno)
        if not isinstance(row, dict):
            raise DataError(f"expected a JSON object, got {type(row).__name__}",
                            path=display_path(path), line=lineno)
        yield lineno, row


def csv_rows(path: Path, text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(line, cells) of each non-blank record of a CSV/TSV text, header included: the line
    where the record starts (a quoted cell may span lines), which errors name. A malformed
    record is a :class:`DataError` naming the file and line."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    line = 1  # where the next record starts
    try:
        for row in reader:
            start, line = line, reader.line_num + 1
            if any(cell.strip() for cell in row):
                yield start, row
    except csv.Error as e:
        raise DataError(f"malformed CSV ({one_line(e)})", path=display_path(path),
                        line=reader.line_num) from None
