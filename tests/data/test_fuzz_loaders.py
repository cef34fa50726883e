"""Bad input, tried systematically: every loader of ``tunescope.data`` is fed at least
:data:`EXAMPLES` generated malformed inputs (hypothesis).

Each input is either a valid file changed by a few structured mutations (a field dropped, a
value of the wrong type, a row repeated, deleted or replaced by junk, a cell added or removed)
followed by byte-level damage (truncation, injected bytes such as invalid UTF-8, NUL, BOM, CR,
U+2028), or random text or bytes. The property, for every input:

* the loader returns records that are valid (checked per loader), or
* it raises :class:`~tunescope.errors.TunescopeError` -- a :class:`~tunescope.errors.DataError`
  whenever only file contents were bad -- whose message is one line, starts with the file it
  names, names a line inside that file when it names one, and names a field of that loader's
  format when it names one.

Any other exception, a multi-line message or a nonsense line/field fails the test. Inputs are
written into one scratch directory that every example reuses. The runs are derandomised (the
same inputs on every run); ``TUNESCOPE_FUZZ_SEED=<n>`` draws another set and
``TUNESCOPE_FUZZ_EXAMPLES=<n>`` changes the count.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tunescope.data import (
    Task,
    load_instruction_jsonl,
    load_pairs,
    load_pararel,
    load_task,
    load_word_frequencies,
    load_wu2024,
)
from tunescope.data.instructions import load_annotations, sentence_spans
from tunescope.data.types import Relation, template_problem
from tunescope.data.wu2024_levels import load_levels
from tunescope.errors import DataError, TunescopeError

EXAMPLES = int(os.environ.get("TUNESCOPE_FUZZ_EXAMPLES", "1000"))
"""Malformed inputs each loader must reject (valid-looking mutations come on top)."""
_SEED = os.environ.get("TUNESCOPE_FUZZ_SEED")
FUZZ = settings(max_examples=EXAMPLES * 13 // 10, deadline=None, database=None,
                derandomize=_SEED is None, print_blob=True,
                suppress_health_check=list(HealthCheck))

RUNS: dict[str, int] = {}
"""Inputs run per loader (printed at the end of each test; shown with ``pytest -s``)."""
REJECTED: dict[str, int] = {}
"""Of those, the inputs the loader rejected with a clean TunescopeError."""


def fuzz(max_examples: int | None = None):
    """:data:`FUZZ` (with ``max_examples`` when given, and the seed from
    ``TUNESCOPE_FUZZ_SEED`` when set) as a decorator."""
    chosen = FUZZ if max_examples is None else settings(FUZZ, max_examples=max_examples)

    def decorate(test):
        test = chosen(test)
        return seed(int(_SEED))(test) if _SEED is not None else test
    return decorate


def run_counted(name: str, prop) -> None:
    """Run the hypothesis property ``prop``; check that the loader rejected at least
    EXAMPLES of its inputs (hypothesis stops early when it runs out of distinct inputs)."""
    RUNS[name] = REJECTED[name] = 0
    prop()
    print(f"\n{name}: {RUNS[name]} inputs, {REJECTED[name]} rejected")
    assert REJECTED[name] >= EXAMPLES


def put(path: Path, data: bytes) -> None:
    """Write ``data`` to a fresh ``path`` (truncating a file in place is slow on ext4)."""
    path.unlink(missing_ok=True)
    path.write_bytes(data)


# --- the property ----------------------------------------------------------------------------

_LINE_BREAKS = re.compile(r"\r\n|\r|\n")


def _n_lines(path: Path) -> int:
    """Lines of a file, counting CR, LF and CRLF as line ends (as csv and editors do)."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    return len(_LINE_BREAKS.split(text))


def check_error(error: TunescopeError, files: list[Path], fields: set[str],
                data_error: bool) -> None:
    """The error is one line naming one of ``files`` (and a real line and field)."""
    message = str(error)
    assert message and message == message.strip(), repr(message)
    assert len(message.splitlines()) == 1, repr(message)
    assert len(message) < 300, f"message of {len(message)} characters: {message[:200]}..."
    if data_error:
        assert isinstance(error, DataError), repr(error)
    if not isinstance(error, DataError):
        return
    names = {str(f) for f in files}
    assert error.path in names, f"names {error.path!r}, not one of the input files: {message}"
    assert message.startswith(error.path), message
    if error.line is not None:
        assert message.startswith(f"{error.path}:{error.line}: "), message
        assert 1 <= error.line <= _n_lines(Path(error.path)), message
    if error.field is not None:
        assert error.field in fields, f"unknown field {error.field!r}: {message}"
        assert f"field '{error.field}'" in message, message


def attempt(name: str, load, files, fields, validate, data_error: bool = True):
    """Run ``load()``: valid records (checked by ``validate``) or a clean TunescopeError."""
    RUNS[name] += 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = load()
    except TunescopeError as error:
        check_error(error, files, fields, data_error)
        REJECTED[name] += 1
        return None
    validate(out)
    return out


# --- generic strategies: junk values, text, bytes ------------------------------------------

SPECIAL = ["", " ", "  \t ", "\n", "\r", "\t", "\x00", "\ufeff", "\u2028", "\x85", "\udc80",
           "[X]", "[Y]", "[X] [X] [Y]", "[X] is [Y] [Y]", "The [X] is [Y].", "[Y] of [X]",
           "0", "1", "2", "-1", "1.0", "true", "False", "yes", "nan", "inf", "-inf", "1e400",
           "1_0", "\uff11", "../x", "../../etc/passwd", "/etc/passwd", "P36", "P0", "p36",
           "&&&", "|||", "Input:", "input: x", '"', '""', '"a ""b"" c"', '"open', "/n", "/t",
           "\u0130", "\u0130\u0130 stanbul.", "{text}", "{text", "a\r\nb", "x" * 300,
           "\ud800\udc00", "\u202e", "pos", "neg"]
"""Strings that have broken loaders somewhere: line breaks of all kinds, BOM, NUL, lone
surrogates, template slots, label spellings, path escapes, Wu et al. markup, expanding case."""

TEXT = st.one_of(st.text(max_size=16), st.sampled_from(SPECIAL))
JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 60), st.integers(-2**70, 2**70),
    st.floats(allow_nan=True, allow_infinity=True), TEXT,
    st.lists(st.one_of(st.integers(-3, 60), TEXT), max_size=3),
    st.lists(st.lists(st.one_of(st.integers(-3, 60), st.floats(0, 5), st.booleans()),
                      max_size=3), max_size=3),
    st.dictionaries(TEXT, st.one_of(TEXT, st.integers(), st.none()), max_size=3))
"""Values of the wrong type (or the right type with a bad value) for any JSON field."""

RAW_LINES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(['{"a":', "{", "}", "[1, 2]", "null", "1", '"text"', "{}", "NaN",
                     '{"pattern": NaN}', '{"id": 1e999}', "1" * 5000, "[" * 3000,
                     '{"a": ' * 2000, '{"x": "\\ud800"}', '{"x": 1} {"y": 2}',
                     '{"dup": 1, "dup": 2}', "\x00\x01\x02", "\ufeff{}"]))
"""Lines that are not (or barely) JSON objects: broken syntax, huge ints, deep nesting."""

INJECT = st.one_of(
    st.sampled_from([b"\xff", b"\xfe\xff", b"\xef\xbb\xbf", b"\x00", b"\r", b"\n", b"\r\n",
                     "\u2028".encode(), b"\x85", b"\xc3", b"\xed\xa0\x80", b"\x80\x80", b'"',
                     b"\t", b",", b"{", b"}", b"\\", b"\\u", b"[X]", b"&&&", b"/n"]),
    st.binary(min_size=1, max_size=8))
"""Bytes injected into a file: invalid or partial UTF-8, BOMs, NUL, line breaks, syntax."""


RANDOM_FILE = st.one_of(st.binary(max_size=120),
                        st.text(max_size=120).map(lambda t: t.encode("utf-8", "surrogatepass")))
"""A file of random bytes, or random text written as UTF-8 (lone surrogates kept as bytes)."""


def damage(draw, data: bytes, at_least: int = 0) -> bytes:
    """``data`` after ``at_least``-2 byte-level changes (truncate, inject, CRLF, BOM), or
    replaced by random bytes or text one time in twelve."""
    if draw(st.integers(0, 11)) == 0:
        return draw(RANDOM_FILE)
    for _ in range(draw(st.integers(at_least, 2))):
        op = pick(draw, ["truncate", "inject", "inject", "crlf", "bom"])
        if op == "truncate":
            data = data[:draw(st.integers(0, len(data)))]
        elif op == "inject":
            k = draw(st.integers(0, len(data)))
            data = data[:k] + draw(INJECT) + data[k:]
        elif op == "crlf":
            data = data.replace(b"\n", b"\r\n")
        else:
            data = b"\xef\xbb\xbf" + data
    return data


def pick(draw, options):
    """One of ``options`` (a sequence), drawn by index: cheaper than building a new
    ``sampled_from`` strategy inside every example."""
    return options[draw(st.integers(0, len(options) - 1))]


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def mutate_rows(draw, rows: list[dict], fields: list[str], values=JUNK) -> list:
    """``rows`` after 0-3 structured mutations; items are dicts, or raw lines (str)."""
    rows = [dict(r) for r in rows]
    for _ in range(draw(st.integers(0, 3))):
        op = pick(draw, ["drop", "set", "set", "add", "raw", "dup", "del"])
        if not rows and op != "raw":
            continue
        k = draw(st.integers(0, max(0, len(rows) - 1)))
        row = rows[k] if rows else None
        if op == "drop" and isinstance(row, dict) and row:
            del row[pick(draw, sorted(row))]
        elif op == "set" and isinstance(row, dict):
            row[pick(draw, fields)] = draw(values)
        elif op == "add" and isinstance(row, dict):
            row[draw(TEXT)] = draw(JUNK)
        elif op == "raw":
            rows.insert(k, draw(RAW_LINES))
        elif op == "dup":
            rows.insert(draw(st.integers(0, len(rows))), row)
        elif op == "del":
            del rows[k]
    return rows


@st.composite
def jsonl_file(draw, rows: list[dict], fields: list[str], values=JUNK) -> bytes:
    """A JSONL file: mutated ``rows`` serialised (ASCII-escaped or not), then damaged (always
    changed in some way: damaged when no row was)."""
    items = mutate_rows(draw, rows, fields, values)
    at_least = 0 if items != rows else 1
    ascii_only = draw(st.booleans())
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=ascii_only) for r in items]
    blank = pick(draw, ["", "", "\n", "\n   \n"])
    return damage(draw, _encode("\n".join(lines) + "\n" + blank), at_least)


def mutate_table(draw, header: list[str], rows: list[list[str]], cells=TEXT) -> list[list]:
    """Header + ``rows`` after 0-3 mutations: a cell changed, dropped or added (ragged rows),
    a column renamed or dropped in the header, rows repeated, deleted or replaced by text."""
    table = [list(header)] + [list(r) for r in rows]
    for _ in range(draw(st.integers(0, 3))):
        op = pick(draw, ["cell", "cell", "cell", "dropcell", "addcell", "header", "raw", "dup",
                         "del"])
        k = draw(st.integers(0, len(table) - 1)) if table else 0
        if not table:
            break
        row = table[k]
        if op == "cell" and row:
            row[draw(st.integers(0, len(row) - 1))] = draw(cells)
        elif op == "dropcell" and row:
            del row[draw(st.integers(0, len(row) - 1))]
        elif op == "addcell":
            row.insert(draw(st.integers(0, len(row))), draw(cells))
        elif op == "header" and table[0]:
            j = draw(st.integers(0, len(table[0]) - 1))
            table[0][j] = pick(draw, header) if draw(st.booleans()) else draw(TEXT)
        elif op == "raw":
            table[k] = [draw(st.text(max_size=30))]
        elif op == "dup":
            table.insert(k, list(row))
        elif op == "del":
            del table[k]
    return table


@st.composite
def delimited_file(draw, header, rows, delimiter: str, cells=TEXT, quoted: bool = True) -> bytes:
    """A CSV/TSV file of mutated rows, written by the csv module (quoting as needed) or joined
    naively (stray quotes and delimiters left as they are), then damaged."""
    table = mutate_table(draw, header, rows, cells)
    at_least = 0 if table != [list(header)] + [list(r) for r in rows] else 1
    newline = pick(draw, ["\n", "\r\n"])
    if quoted and draw(st.booleans()):
        buf = io.StringIO()
        csv.writer(buf, delimiter=delimiter, lineterminator=newline).writerows(table)
        text = buf.getvalue()
    else:
        text = "".join(delimiter.join(r) + newline for r in table)
    return damage(draw, _encode(text), at_least)


# --- ParaRel directories ---------------------------------------------------------------------

PARAREL_PATTERNS = {
    "P36": [{"pattern": "The capital of [X] is [Y].", "lemma": "capital", "tense": "present"},
            {"pattern": "[X]'s capital is [Y].", "lemma": "capital"},
            {"pattern": "[Y] is the capital of [X].", "lemma": "capital"}],
    "P37": [{"pattern": "The official language of [X] is [Y].", "lemma": "language"},
            {"pattern": "In [X], people speak [Y]."}],
}
PARAREL_TUPLES = {
    "P36": [{"sub_label": "France", "obj_label": "Paris", "uuid": "u1"},
            {"sub_label": "Italy", "obj_label": "Rome", "uuid": "u2"},
            {"sub_label": "Spain", "obj_label": "Madrid"}],
    "P37": [{"sub_label": "France", "obj_label": "French", "uuid": "u3"},
            {"sub_label": "Spain", "obj_label": "Spanish", "uuid": "u4"}],
}
PARAREL_LAYOUTS = [("", "patterns", "tuples"),
                   ("", "data/pattern_data/graphs_json", "data/trex_lms_vocab"),
                   ("data", "data/pattern_data/graphs_json", "data/trex_lms_vocab")]
"""(directory passed to the loader, patterns directory, tuples directory), relative paths."""
PATTERN_VALUES = st.one_of(JUNK, st.sampled_from(["[X] [X] [Y]", "[X] and [Y] [Y]", "[X] only",
                                                  "[Y] only", "no slots", "[x] is [y]",
                                                  "[X] is [Y]", "[Y] [X]"]))


def _jsonl_text(rows: list[dict]) -> bytes:
    return _encode("".join(json.dumps(r) + "\n" for r in rows))


PATTERN_FILES = {rid: jsonl_file(rows, ("pattern",), PATTERN_VALUES)
                 for rid, rows in PARAREL_PATTERNS.items()}
TUPLE_FILES = {rid: jsonl_file(rows, ("sub_label", "obj_label", "uuid"))
               for rid, rows in PARAREL_TUPLES.items()}
RELATIONS = st.one_of(st.none(), st.sampled_from(["P36", "P37"]),
                      st.lists(st.sampled_from(["P36", "P37"]), min_size=1, max_size=3))
BAD_RELATIONS = st.one_of(
    st.lists(st.sampled_from(["P99", "../x", "../patterns/P36", "P36/../P37", "", "P36.jsonl",
                              "/etc/passwd", "P\x00"]), max_size=2),
    st.lists(JUNK, min_size=1, max_size=2), st.just([]))
"""Relation ids that name nothing in the directory, escape it, or are not strings at all."""
LABELS = st.one_of(st.just({"P36": "capital", "P37": "official language"}),
                   st.dictionaries(TEXT, JUNK, max_size=3), JUNK)


@st.composite
def pararel_case(draw):
    """(layout index, {relative path: bytes}, load kwargs, whether the kwargs are valid, a
    directory to remove or None): the seed directory in one of the layouts after 1-3 changes
    (a template or fact file mutated, a file deleted, a relation with one file only, bad
    labels, a stray file, the patterns or tuples directory removed, or bad arguments:
    unknown or path-like relation ids, a bad ``max_facts``)."""
    layout = draw(st.integers(0, len(PARAREL_LAYOUTS) - 1))
    base, pat, tup = PARAREL_LAYOUTS[layout]
    dropped = None
    files = {f"{d}/{rid}.jsonl": _jsonl_text(rows[rid])
             for d, rows in ((pat, PARAREL_PATTERNS), (tup, PARAREL_TUPLES)) for rid in rows}
    relations = draw(RELATIONS)
    kwargs = {"relations": relations, "y_last_only": draw(st.booleans())}
    if draw(st.booleans()):
        kwargs["max_facts"] = pick(draw, [1, 2, 100])
    valid_args = True
    for _ in range(draw(st.integers(1, 3))):
        op = pick(draw, ["patterns", "patterns", "tuples", "tuples", "delete", "extra", "labels",
                         "stray", "dropdir", "relations", "max_facts"])
        rid = pick(draw, sorted(PARAREL_PATTERNS))
        if op == "patterns":
            files[f"{pat}/{rid}.jsonl"] = draw(PATTERN_FILES[rid])
        elif op == "tuples":
            files[f"{tup}/{rid}.jsonl"] = draw(TUPLE_FILES[rid])
        elif op == "delete" and files:
            del files[pick(draw, sorted(files))]
        elif op == "extra":  # a relation with templates only, or facts only, or odd names
            name = pick(draw, ["P99", "P1", ".hidden", "x y", "P36.bak"])
            where = pick(draw, [pat, tup])
            files[f"{where}/{name}.jsonl"] = draw(PATTERN_FILES["P36"])
        elif op == "labels":
            files[f"{base + '/' if base else ''}relations.json"] = damage(
                draw, _encode(json.dumps(draw(LABELS))))
        elif op == "stray":
            files[f"{pat}/notes.txt"] = b"not a relation"
        elif op == "dropdir":
            dropped = pick(draw, [pat, tup])
        elif op == "relations":
            kwargs["relations"] = draw(BAD_RELATIONS)
            valid_args = False
        elif op == "max_facts":
            kwargs["max_facts"] = pick(draw, [0, -1, True, 1.5, "2"])
            valid_args = False
    return layout, files, kwargs, valid_args, dropped


PARAREL_FIELDS = {"pattern", "sub_label", "obj_label", "uuid"}


def _valid_relations(relations, kwargs) -> None:
    assert relations and all(isinstance(r, Relation) for r in relations)
    wanted = kwargs["relations"]
    if wanted is not None:
        wanted = [wanted] if isinstance(wanted, str) else wanted
        assert [r.id for r in relations] == [w for w in dict.fromkeys(wanted)
                                            if w in {r.id for r in relations}]
    assert len({r.id for r in relations}) == len(relations)
    for rel in relations:
        assert rel.templates and rel.facts
        assert len({t.pattern for t in rel.templates}) == len(rel.templates)
        for t in rel.templates:
            assert t.relation_id == rel.id and template_problem(t.pattern) is None
            assert t.y_last or not kwargs["y_last_only"]
        for f in rel.facts:
            assert f.relation_id == rel.id
            assert isinstance(f.subject, str) and f.subject.strip()
            assert isinstance(f.object, str) and f.object.strip()
            assert isinstance(f.uuid, str)
        if isinstance(kwargs.get("max_facts"), int):
            assert len(rel.facts) <= kwargs["max_facts"]


def test_pararel_directories(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("fuzz-pararel")
    written: list[Path] = []  # the previous example's files, removed before the next one

    @fuzz(EXAMPLES * 3 // 2)  # about a quarter of the changed directories are still valid
    @given(pararel_case())
    def prop(case):
        layout, files, kwargs, valid_args, dropped = case
        for old in written:
            old.unlink(missing_ok=True)
        written.clear()
        home = scratch / f"layout{layout}"  # one directory per layout: no stray decoys
        for rel, data in files.items():
            target = home / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            put(target, data)
            written.append(target)
        if dropped:  # a half layout: e.g. patterns/ without tuples/
            shutil.rmtree(home / dropped, ignore_errors=True)
        base = PARAREL_LAYOUTS[layout][0]
        root = home / base if base else home
        attempt("pararel", lambda: load_pararel(root, **kwargs), written + [root],
                PARAREL_FIELDS, lambda rels: _valid_relations(rels, kwargs),
                data_error=valid_args)

    run_counted("pararel", prop)


def test_pararel_unmodified_directory_loads_exactly(tmp_path):
    """The seed directory itself loads to the expected records (the fuzzing starts valid)."""
    for base, pat, tup in PARAREL_LAYOUTS:
        root = tmp_path / pat.replace("/", "_")
        for rid in PARAREL_PATTERNS:
            for sub, rows in ((pat, PARAREL_PATTERNS[rid]), (tup, PARAREL_TUPLES[rid])):
                target = root / sub / f"{rid}.jsonl"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text("".join(json.dumps(r) + "\n" for r in rows))
        rels = load_pararel(root / base if base else root)
        assert [r.id for r in rels] == ["P36", "P37"]
        assert [len(r.templates) for r in rels] == [3, 2]
        assert [len(r.facts) for r in rels] == [3, 2]
        assert rels[0].facts[2].uuid == "" and rels[0].label == "capital"


# --- pairs (CSV, TSV, JSONL) ------------------------------------------------------------------

PAIR_ROWS = [{"a": "The cat sat on the mat.", "b": "A cat was sitting on the mat.", "label": 1},
             {"a": "He paid the bill.", "b": "She paid the bill.", "label": "0",
              "source": "written"},
             {"sentence1": "Paris is in France.", "sentence2": "Paris lies in France.",
              "label": True}]
PAIR_FIELDS = {"a", "b", "sentence1", "sentence2", "label", "source"}
PAIR_HEADERS = [["a", "b", "label"], ["sentence1", "sentence2", "label", "source"],
                ["A", "B", "Label", "extra"]]
PAIR_CELLS = st.one_of(TEXT, st.sampled_from(["0", "1", "true", "FALSE", " 1 ", "2", "-1",
                                              "yes", "1.0", "a,b", 'x"y', '"q"', "a\tb"]))


def _valid_pairs(pairs) -> None:
    assert pairs
    for p in pairs:
        assert p.label in (0, 1) and isinstance(p.source, str)
        for s in (p.a, p.b):
            assert isinstance(s, str) and s and s == s.strip()


PAIR_TABLE = [["The cat sat.", "A cat sat.", "1", "x"], ["He paid.", "She paid.", "0", ""],
              ["Paris is big.", "Paris is large.", "true", "y"]]


def pair_files(delimiter: str):
    """CSV/TSV pair files under each header of :data:`PAIR_HEADERS`."""
    return st.one_of([delimited_file(h, [r[:len(h)] for r in PAIR_TABLE], delimiter, PAIR_CELLS)
                      for h in PAIR_HEADERS])


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_pairs_delimited(tmp_path_factory, suffix):
    path = tmp_path_factory.mktemp("fuzz-pairs") / f"pairs{suffix}"
    delimiter = "," if suffix == ".csv" else "\t"

    @fuzz()
    @given(pair_files(delimiter))
    def prop(data):
        put(path, data)
        attempt(f"pairs{suffix}", lambda: load_pairs(path), [path], PAIR_FIELDS, _valid_pairs)

    run_counted(f"pairs{suffix}", prop)


def test_pairs_jsonl(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz-pairs") / "pairs.jsonl"

    @fuzz()
    @given(jsonl_file(PAIR_ROWS, sorted(PAIR_FIELDS)))
    def prop(data):
        put(path, data)
        attempt("pairs.jsonl", lambda: load_pairs(path), [path], PAIR_FIELDS, _valid_pairs)

    run_counted("pairs.jsonl", prop)


# --- tasks (JSONL) ----------------------------------------------------------------------------

TASK_ROWS = [{"task": "toy", "labels": ["neg", "pos"], "label_words": {"neg": " bad",
                                                                       "pos": " good"},
              "prompt_template": "Review: {text}\nSentiment:"},
             {"id": "r1", "text": "A wonderful film.", "label": "pos",
              "perturbations": {"typo": "A wonderfull film.", "casing": "a WONDERFUL film."}},
             {"id": "r2", "text": "A dull film.", "label": "neg",
              "perturbations": {"paraphrase": "A boring movie."}},
             {"id": 3, "text": "Great food.", "label": "pos"}]
TASK_FIELDS = {"task", "labels", "label_words", "prompt_template", "id", "text", "label",
               "perturbations"}


def _valid_task(task) -> None:
    assert isinstance(task, Task) and task.name
    assert len(task.labels) >= 2 and len(set(task.labels)) == len(task.labels)
    assert [x for x, _ in task.label_words] == list(task.labels)
    assert all(isinstance(w, str) and w for _, w in task.label_words)
    assert "{text}" in task.prompt_template
    assert task.examples and len({e.id for e in task.examples}) == len(task.examples)
    for e in task.examples:
        assert e.label in task.labels and e.text.strip() and isinstance(e.id, str) and e.id
        assert all(isinstance(k, str) and v.strip() for k, v in e.perturbations)


def test_task_jsonl(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz-task") / "task.jsonl"

    @fuzz(EXAMPLES * 16 // 10)   # the task file's synonym perturbations make more mutants valid
    @given(jsonl_file(TASK_ROWS, sorted(TASK_FIELDS)))
    def prop(data):
        put(path, data)
        attempt("task", lambda: load_task(path), [path], TASK_FIELDS, _valid_task)

    run_counted("task", prop)


# --- instruction prompts: user JSONL, the Wu et al. TSV files ----------------------------------

INSTRUCTION_ROWS = [
    {"id": "sum-1", "prompt": "Summarize the text below.\nInput: The sea is wide.",
     "instruction": ["Summarize the text below."], "context": "The sea is wide.",
     "source": "user", "category": "writing"},
    {"id": "tr-2", "prompt": "Translate to French: I like apples.", "instruction_spans": [[0, 19]],
     "category": "translation", "response": "J'aime les pommes."},
    {"prompt": "What is 3 + 4? Answer briefly.", "instruction": "Answer briefly."}]
INSTRUCTION_FIELDS = {"id", "prompt", "instruction", "instruction_spans", "context", "source",
                      "category", "response"}
SPAN_VALUES = st.one_of(JUNK, st.sampled_from([[[-1, 3]], [[3, 1]], [[0, 0]], [[0, 10**6]],
                                               [[0, 1.5]], [[True, 2]], [0, 1], "0-5", [[0]],
                                               [[0, 5, 9]], [[0, 5], [2, 8]]]))


def _valid_prompts(prompts, wu: bool = False) -> None:
    assert prompts and len({p.id for p in prompts}) == len(prompts)
    for p in prompts:
        assert isinstance(p.id, str) and p.id.strip() and p.text.strip()
        assert all(0 <= a < b <= len(p.text) for a, b in p.instruction_spans)
        assert list(p.instruction_spans) == sorted(p.instruction_spans)
        if wu:  # Wu et al. spans are whole sentences of the prompt
            assert set(p.instruction_spans) <= set(sentence_spans(p.text))
        else:
            assert p.instruction_spans
        for name in ("source", "category", "context", "response"):
            assert isinstance(getattr(p, name), str)


def test_instruction_jsonl(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz-instructions") / "prompts.jsonl"

    @fuzz()
    @given(jsonl_file(INSTRUCTION_ROWS, sorted(INSTRUCTION_FIELDS),
                      st.one_of(JUNK, SPAN_VALUES)))
    def prop(data):
        put(path, data)
        attempt("instructions.jsonl", lambda: load_instruction_jsonl(path), [path],
                INSTRUCTION_FIELDS, _valid_prompts)

    run_counted("instructions.jsonl", prop)


WU_HEADER = ["ID", "Prompt", "Response", "Instruct&Context"]
WU_ROWS = [["user_oriented_task_1", "Write a poem about the sea. Keep it short.",
            "The sea is blue./nIt is wide.", "Write a poem about the sea.|||Keep it short&&&"],
           ["lima_author_2", '"Explain ""gravity"" to a child."', "Things fall.",
            '"Explain ""gravity"""&&&'],
           ["mtbench_writing_3", "Input: Matilda/nSummarize the book above.", "A girl reads.",
            "Summarize the book above.&&&Matilda"]]
WU_FIELDS = set(WU_HEADER)
WU_CELLS = st.one_of(TEXT, st.sampled_from(["&&&", "a|||b&&&c", "Keep it short", "/n/n", "/t",
                                            '"x" y', '"x""', "Input:|||&&&", "\u0130" * 5,
                                            "Write a poem about the sea."]))


def test_wu2024_tsv(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz-wu") / "FinalDataset.tsv"

    @fuzz()
    @given(delimited_file(WU_HEADER, WU_ROWS, "\t", WU_CELLS, quoted=False))
    def prop(data):
        put(path, data)
        attempt("wu2024.tsv", lambda: load_wu2024(path), [path], WU_FIELDS,
                lambda ps: _valid_prompts(ps, wu=True))

    run_counted("wu2024.tsv", prop)


ANNOTATION_HEADER = ["File", "Model", "Prompt", "Reference", "Instruct", "Response", "Rating"]
ANNOTATION_ROWS = [["user_oriented_task_1.pkl", "vicuna_7B", "Write a poem.", "A poem.",
                    "Write a poem.", "The sea is blue.", "3"],
                   ["lima_author_2.pkl", "llama_7B", "Explain.", "", "Explain.", "No.", "-1"]]


def _valid_annotations(df) -> None:
    assert list(df.columns) == ANNOTATION_HEADER + ["id"]
    assert all(isinstance(r, int) for r in df["Rating"])
    assert all(isinstance(f, str) and f and f == f.strip() for f in df["File"])


def test_wu2024_annotations_tsv(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz-wu") / "AnnotatedDataset.tsv"
    cells = st.one_of(WU_CELLS, st.sampled_from(["1", "4", "-1", "x", "", " 2 ", "2.5"]))

    @fuzz()
    @given(delimited_file(ANNOTATION_HEADER, ANNOTATION_ROWS, "\t", cells, quoted=False))
    def prop(data):
        put(path, data)
        attempt("wu2024 annotations", lambda: load_annotations(path), [path],
                set(ANNOTATION_HEADER), _valid_annotations)

    run_counted("wu2024 annotations", prop)


# --- word frequencies -------------------------------------------------------------------------

VOCAB_ROWS = [["the", "0.05"], ["sea", "0.001"], ["poem", "1e-4"], ["blue", "0.001"]]
FREQ_CELLS = st.one_of(TEXT, st.sampled_from(["nan", "-1", "inf", "1e400", "abc", "", " 3 ",
                                              "1_0", "0x10", "\uff11\uff12", "1e-5", "frequency",
                                              "count", "the", "sea"]))


def _valid_vocabulary(vocab) -> None:
    assert len(vocab) and len(set(vocab.words)) == len(vocab.words)
    assert all(isinstance(w, str) and w.strip() and "\t" not in w for w in vocab.words)
    assert all(math.isfinite(f) and f >= 0 for f in vocab.frequencies)
    assert list(vocab.frequencies) == sorted(vocab.frequencies, reverse=True)


def test_word_frequencies(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz-vocab") / "vocab.tsv"
    files = st.one_of([delimited_file(h, VOCAB_ROWS[1:] if h[0] == "the" else VOCAB_ROWS, "\t",
                                      FREQ_CELLS, quoted=False)
                       for h in (["word", "frequency"], ["w", "count"], ["the", "0.05"])])

    @fuzz()
    @given(files)
    def prop(data):
        put(path, data)
        attempt("vocabulary", lambda: load_word_frequencies(path), [path], {"word", "frequency"},
                _valid_vocabulary)

    run_counted("vocabulary", prop)


# --- stored levels (Wu et al. .npz + tokens JSONL) ---------------------------------------------

LEVEL_ROWS = [{"id": "p1", "input_tokens": ["\u2581Write", "\u2581a", "\u2581poem"],
               "output_tokens": ["\u2581Sure", "."], "shape": [3, 2]},
              {"id": "p2", "input_tokens": ["\u2581Hi", "<0x0A>"], "output_tokens": [],
               "shape": [0]}]
LEVEL_FIELDS = {"id", "input_tokens", "output_tokens", "shape"}


def _level_arrays() -> dict[str, np.ndarray]:
    return {"p1": np.array([[0, 10], [3, 4], [7, 1]], dtype=np.uint8),
            "p2": np.zeros(0, dtype=np.uint8)}


SHAPES = st.lists(st.integers(0, 4), max_size=3)


@st.composite
def npz_file(draw) -> bytes:
    """An .npz of level matrices after 0-2 array mutations, or a damaged/foreign file."""
    arrays: dict[str, object] = _level_arrays()
    raw_members: dict[str, bytes] = {}
    for _ in range(draw(st.integers(0, 2))):
        op = pick(draw, ["drop", "extra", "shape", "dtype", "value", "ndim", "object", "member"])
        key = pick(draw, ["p1", "p2"])
        if op == "drop":
            arrays.pop(key, None)
        elif op == "extra":
            arrays[pick(draw, ["p3", "", "../p1", "p 1"])] = np.ones((1, 1), np.uint8)
        elif op == "shape":
            arrays[key] = np.zeros(draw(SHAPES), np.uint8)
        elif op == "dtype":
            arrays[key] = _level_arrays()[key].astype(
                pick(draw, ["float32", "int64", "bool", "complex64", "U3", "int8"]))
        elif op == "value":
            arr = np.array([[0, 10], [3, 4], [7, 1]], dtype=np.int16)
            arr[draw(st.integers(0, 2)), draw(st.integers(0, 1))] = pick(draw,
                                                                         [-1, 11, 255, 1000])
            arrays["p1"] = arr
        elif op == "ndim":
            arrays[key] = np.asarray(pick(draw, [5, [[[1]]], []]), dtype=np.uint8)
        elif op == "object":
            arrays[key] = np.array([[1, None], ["x", 2.5], [0, 0]], dtype=object)
        else:
            raw_members[pick(draw, ["p1", "p1.npy", "p2.txt", "x.npy"])] = draw(
                st.binary(max_size=40))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = buf.getvalue()
    if raw_members:
        with zipfile.ZipFile(buf, "a") as z, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a member may repeat an array's name
            for name, blob in raw_members.items():
                z.writestr(name, blob)
        data = buf.getvalue()
    what = draw(st.integers(0, 9))
    if what == 0:
        data = damage(draw, data)
    elif what == 1:
        npy = io.BytesIO()
        np.save(npy, np.zeros((3, 2), np.uint8))
        data = npy.getvalue()
    return data


def _valid_levels(levels) -> None:
    assert levels
    for pid, att in levels.items():
        assert att.id == pid and att.levels.ndim == 2
        assert att.levels.shape == (len(att.prompt_pieces), len(att.response_pieces))
        assert att.levels.dtype.kind in "iub"
        assert att.levels.size == 0 or (att.levels.min() >= 0 and att.levels.max() <= 10)


def test_stored_levels(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("fuzz-levels")
    npz, tokens = scratch / "m_levels.npz", scratch / "m_tokens.jsonl"

    @fuzz()
    @given(npz_file(), jsonl_file(LEVEL_ROWS, sorted(LEVEL_FIELDS)))
    def prop(npz_data, tokens_data):
        put(npz, npz_data)
        put(tokens, tokens_data)
        attempt("wu2024 levels", lambda: load_levels(npz, tokens), [npz, tokens], LEVEL_FIELDS,
                _valid_levels)

    run_counted("wu2024 levels", prop)


# --- paths that are not files -----------------------------------------------------------------

BAD_PATHS = ["missing.jsonl", "a_directory", "nul\x00byte.jsonl", "x" * 300 + ".jsonl",
             "a_directory/../missing.tsv", "not_a_dir/file.jsonl"]


@pytest.mark.parametrize("name", BAD_PATHS)
def test_every_loader_names_a_bad_path(tmp_path, name):
    """Missing files, directories, NUL bytes and over-long names: one DataError line each."""
    (tmp_path / "a_directory").mkdir()
    (tmp_path / "not_a_dir").write_text("x")
    path = tmp_path / name
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps(LEVEL_ROWS[0]) + "\n")
    loaders = [load_pararel, load_pairs, load_task, load_instruction_jsonl, load_wu2024,
               load_annotations, load_word_frequencies, lambda p: load_levels(p, good),
               lambda p: load_levels(tmp_path / "a_directory", p)]
    for load in loaders:
        with pytest.raises(DataError) as info:
            load(path)
        message = str(info.value)
        assert len(message.splitlines()) == 1 and info.value.path is not None, message
