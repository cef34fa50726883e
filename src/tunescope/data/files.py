"""Reading users' data files: UTF-8 text and JSON Lines, with errors naming file and line."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from tunescope.errors import DataError


def read_text(path: str | os.PathLike) -> tuple[Path, str]:
    """The UTF-8 text of a file; DataError for a missing, unreadable or non-UTF-8 file."""
    p = Path(path)
    if not p.exists():
        raise DataError("no such file", path=str(p))
    if p.is_dir():
        raise DataError("is a directory, expected a file", path=str(p))
    try:
        return p, p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"not UTF-8 text ({e.reason} at byte {e.start})", path=str(p)) from None
    except OSError as e:
        raise DataError(f"cannot read file: {e.strerror or e}", path=str(p)) from None


def json_objects(path: Path, text: str) -> Iterator[tuple[int, dict]]:
    """(1-based line number, object) for each non-blank line of a JSONL text."""
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"invalid JSON ({e.msg}, column {e.colno})", path=str(path),
                            line=lineno) from None
        if not isinstance(row, dict):
            raise DataError(f"expected a JSON object, got {type(row).__name__}",
                            path=str(path), line=lineno)
        yield lineno, row
