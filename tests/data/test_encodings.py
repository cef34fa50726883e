"""Text files in another Unicode encoding than UTF-8 (UTF-16 or UTF-32, with or without a
byte-order mark; NUL bytes are valid UTF-8, so such a file used to give "invalid JSON ...
column 2"): every loader says in one line naming the file that it is not UTF-8 text, and so
does ``tunescope datasets check``."""

from __future__ import annotations

import codecs
import subprocess
import sys
from pathlib import Path

import pytest

from tunescope.data import load_pairs, load_task
from tunescope.data.pairs import builtin_pairs
from tunescope.data.tasks import builtin_task
from tunescope.errors import DataError

BUILTIN = Path(__file__).resolve().parents[2] / "src" / "tunescope" / "data" / "builtin"

NO_BOM = "; UTF-16 or a binary file?)"
ENCODINGS = {
    # name: (encoding, byte-order mark written first, the message after "not UTF-8 text (")
    "UTF-16-LE": ("utf-16-le", b"", "NUL byte at byte 1" + NO_BOM),
    "UTF-16-BE": ("utf-16-be", b"", "NUL byte at byte 0" + NO_BOM),
    "UTF-16-LE with BOM": ("utf-16-le", codecs.BOM_UTF16_LE, "it starts with a UTF-16-LE "
                           "byte-order mark; tunescope reads UTF-8: convert it, e.g. iconv -f "
                           "UTF-16 -t UTF-8)"),
    "UTF-16-BE with BOM": ("utf-16-be", codecs.BOM_UTF16_BE, "it starts with a UTF-16-BE "
                           "byte-order mark; tunescope reads UTF-8: convert it, e.g. iconv -f "
                           "UTF-16 -t UTF-8)"),
    "UTF-32-LE with BOM": ("utf-32-le", codecs.BOM_UTF32_LE, "it starts with a UTF-32-LE "
                           "byte-order mark; tunescope reads UTF-8: convert it, e.g. iconv -f "
                           "UTF-32 -t UTF-8)"),
    "UTF-32-BE without BOM": ("utf-32-be", b"", "NUL byte at byte 0" + NO_BOM),
}


def saved_as(source: Path, target: Path, name: str) -> Path:
    """``source`` (a UTF-8 file) saved as ``target`` in the encoding ``ENCODINGS[name]``."""
    encoding, bom, _ = ENCODINGS[name]
    target.write_bytes(bom + source.read_text(encoding="utf-8").encode(encoding))
    return target


def expected(path: Path, name: str) -> str:
    return f"{path}: not UTF-8 text ({ENCODINGS[name][2]}"


@pytest.mark.parametrize("name", sorted(ENCODINGS))
def test_pairs_jsonl_in_another_encoding(tmp_path, name):
    assert load_pairs(BUILTIN / "pairs.jsonl") == builtin_pairs()  # the UTF-8 original loads
    path = saved_as(BUILTIN / "pairs.jsonl", tmp_path / "pairs.jsonl", name)
    with pytest.raises(DataError) as info:
        load_pairs(path)
    assert str(info.value) == expected(path, name)


@pytest.mark.parametrize("name", ["UTF-16-LE", "UTF-16-BE with BOM"])
def test_pairs_csv_in_another_encoding(tmp_path, name):
    source = tmp_path / "utf8.csv"
    source.write_text("a,b,label\nThe cat sat.,A cat was sitting.,1\nIt rains.,It is sunny.,0\n",
                      encoding="utf-8")
    assert len(load_pairs(source)) == 2
    path = saved_as(source, tmp_path / "pairs.csv", name)
    with pytest.raises(DataError) as info:
        load_pairs(path)
    assert str(info.value) == expected(path, name)


@pytest.mark.parametrize("name", sorted(ENCODINGS))
def test_task_jsonl_in_another_encoding(tmp_path, name):
    assert load_task(BUILTIN / "sentiment.jsonl").examples == builtin_task().examples
    path = saved_as(BUILTIN / "sentiment.jsonl", tmp_path / "task.jsonl", name)
    with pytest.raises(DataError) as info:
        load_task(path)
    assert str(info.value) == expected(path, name)


def test_a_utf8_byte_order_mark_is_still_fine(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(codecs.BOM_UTF8 + (BUILTIN / "pairs.jsonl").read_bytes())
    assert load_pairs(path) == builtin_pairs()


@pytest.mark.parametrize("name", ["UTF-16-LE", "UTF-16-LE with BOM"])
def test_datasets_check_names_the_encoding_in_one_line(tmp_path, name):
    path = saved_as(BUILTIN / "pairs.jsonl", tmp_path / "pairs.jsonl", name)
    done = subprocess.run([sys.executable, "-m", "tunescope", "datasets", "check", "pairs",
                           str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr == f"tunescope: error: {expected(path, name)}\n"
    assert done.stdout == ""
