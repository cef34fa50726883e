"""The error of every loader for the main kinds of bad input, message for message (the table in
the README lists these), and regressions for the loader bugs that fuzzing found."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from tunescope.data import (
    load_instruction_jsonl,
    load_pairs,
    load_pararel,
    load_task,
    load_word_frequencies,
    load_wu2024,
)
from tunescope.data.instructions import find_lenient, instruction_spans_from_fragments
from tunescope.data.wu2024_levels import load_levels
from tunescope.errors import DataError, TunescopeError

P36 = json.dumps({"pattern": "The capital of [X] is [Y]."}) + "\n"
FACT = json.dumps({"sub_label": "France", "obj_label": "Paris"}) + "\n"
TOKENS = json.dumps({"id": "a", "input_tokens": ["\u2581Hi", "."], "output_tokens": ["\u2581Yes"],
                     "shape": [2, 1]}) + "\n"
WU_HEADER = "ID\tPrompt\tResponse\tInstruct&Context\n"


def _pararel(files, **kwargs):
    return lambda root: load_pararel(root / "pararel", **kwargs), {
        f"pararel/{name}": text for name, text in files.items()}


def _one(loader, name, text):
    return lambda root: loader(root / name), {name: text}


def _levels(arrays=None, tokens=TOKENS, raw=None):
    def load(root):
        if raw is None:
            np.savez(root / "m_levels.npz", **arrays)
        else:
            (root / "m_levels.npz").write_bytes(raw)
        return load_levels(root / "m_levels.npz", root / "m_tokens.jsonl")
    return load, {"m_tokens.jsonl": tokens}


CASES = {
    # ParaRel directory
    "pararel: not a ParaRel directory": (
        _pararel({"notes.txt": "x"}),
        "pararel: not a ParaRel directory: expected patterns/ and tuples/, or "
        "data/pattern_data/graphs_json/ and data/trex_lms_vocab/"),
    "pararel: broken JSON line": (
        _pararel({"patterns/P36.jsonl": P36 + '{"pattern": "[X] is [Y]"\n',
                  "tuples/P36.jsonl": FACT}),
        "pararel/patterns/P36.jsonl:2: invalid JSON (Expecting ',' delimiter, column 25)"),
    "pararel: missing field": (
        _pararel({"patterns/P36.jsonl": P36, "tuples/P36.jsonl": '{"sub_label": "France"}\n'}),
        "pararel/tuples/P36.jsonl:1: field 'obj_label': missing"),
    "pararel: wrong type": (
        _pararel({"patterns/P36.jsonl": P36,
                  "tuples/P36.jsonl": '{"sub_label": "France", "obj_label": 7}\n'}),
        "pararel/tuples/P36.jsonl:1: field 'obj_label': must be a non-empty string, got 7"),
    "pararel: template with two [X]": (
        _pararel({"patterns/P36.jsonl": '{"pattern": "[X] and [X] are [Y]."}\n',
                  "tuples/P36.jsonl": FACT}),
        "pararel/patterns/P36.jsonl:1: field 'pattern': template must contain exactly one [X] "
        "and one [Y] (found 2 [X], 1 [Y]): '[X] and [X] are [Y].'"),
    "pararel: empty template file": (
        _pararel({"patterns/P36.jsonl": "", "tuples/P36.jsonl": FACT}),
        "pararel/patterns/P36.jsonl: relation P36 has no templates"),
    "pararel: non-UTF-8 bytes": (
        _pararel({"patterns/P36.jsonl": b'{"pattern": "\xff"}\n', "tuples/P36.jsonl": FACT}),
        "pararel/patterns/P36.jsonl: not UTF-8 text (invalid start byte at byte 13)"),
    "pararel: no facts for a relation": (
        _pararel({"patterns/P36.jsonl": P36, "patterns/P37.jsonl": P36,
                  "tuples/P36.jsonl": FACT}, relations=["P37"]),
        "pararel: relation 'P37' has templates (P37.jsonl) but no fact file in tuples/"),
    "pararel: unknown relation": (
        _pararel({"patterns/P36.jsonl": P36, "tuples/P36.jsonl": FACT}, relations=["../x"]),
        "pararel: unknown relation '../x'; available: P36 (1 in all)"),
    "pararel: JSON nested too deeply": (
        _pararel({"patterns/P36.jsonl": "[" * 100_000 + "\n", "tuples/P36.jsonl": FACT}),
        "pararel/patterns/P36.jsonl:1: invalid JSON (nested too deeply)"),
    # pairs
    "pairs: missing column": (
        _one(load_pairs, "pairs.csv", "a,b\nx,y\n"),
        "pairs.csv:1: field 'label': header has no 'label' column"),
    "pairs: bad label": (
        _one(load_pairs, "pairs.csv", "a,b,label\nx,y,maybe\n"),
        "pairs.csv:2: field 'label': must be 0 or 1 (or true/false), got 'maybe'"),
    "pairs: empty text": (
        _one(load_pairs, "pairs.tsv", "a\tb\tlabel\nx\t \t1\n"),
        "pairs.tsv:2: field 'b': must be a non-empty string, got ' '"),
    "pairs: ragged row": (
        _one(load_pairs, "pairs.csv", "a,b,label\nx,y\n"),
        "pairs.csv:2: field 'label': missing"),
    "pairs: header cell with a line break": (
        _one(load_pairs, "pairs.csv", 'a,"b\nc",label\n'),
        "pairs.csv:1: field 'a': header needs columns a, b, label (or sentence1, sentence2, "
        "label), got ['a', 'b\\nc', 'label']"),
    "pairs: binary junk": (
        _one(load_pairs, "pairs.jsonl", b"\x00\x9c\xff"),
        "pairs.jsonl: not UTF-8 text (NUL byte at byte 0; UTF-16 or a binary file?)"),
    "pairs: UTF-16 without a byte-order mark": (
        _one(load_pairs, "pairs.jsonl", '{"a": "x", "b": "y", "label": 1}\n'.encode("utf-16-le")),
        "pairs.jsonl: not UTF-8 text (NUL byte at byte 1; UTF-16 or a binary file?)"),
    "task: UTF-16 with a byte-order mark": (
        _one(load_task, "task.jsonl",
             b"\xfe\xff" + '{"labels": ["neg", "pos"]}\n'.encode("utf-16-be")),
        "task.jsonl: not UTF-8 text (it starts with a UTF-16-BE byte-order mark; tunescope "
        "reads UTF-8: convert it, e.g. iconv -f UTF-16 -t UTF-8)"),
    "pairs: unknown extension": (
        _one(load_pairs, "pairs.txt", "a"),
        "pairs.txt: unknown pairs format '.txt': expected .csv, .tsv or .jsonl"),
    "pairs: integer of 5000 digits": (
        _one(load_pairs, "pairs.jsonl", '{"a": "x", "b": "y", "label": ' + "1" * 5000 + "}\n"),
        "pairs.jsonl:1: invalid JSON (an integer of more than 4300 digits)"),
    # tasks
    "task: label not in the header's labels": (
        _one(load_task, "task.jsonl",
             '{"labels": ["neg", "pos"]}\n{"text": "Fine.", "label": "meh"}\n'),
        "task.jsonl:2: field 'label': 'meh' is not one of the task's labels ('neg', 'pos')"),
    "task: a single label": (
        _one(load_task, "task.jsonl", '{"text": "Fine.", "label": "pos"}\n'),
        "task.jsonl: field 'label': a task needs two or more labels, found only 'pos'"),
    "task: perturbations not an object": (
        _one(load_task, "task.jsonl",
             '{"text": "Fine.", "label": "pos", "perturbations": ["typo"]}\n'),
        "task.jsonl:1: field 'perturbations': must be an object mapping kinds to non-empty "
        "strings, got ['typo']"),
    "task: duplicate id": (
        _one(load_task, "task.jsonl", '{"id": 1, "text": "A.", "label": "pos"}\n'
                                      '{"id": "1", "text": "B.", "label": "neg"}\n'),
        "task.jsonl:2: field 'id': duplicate id '1' (first on line 1)"),
    "task: template without {text}": (
        _one(load_task, "task.jsonl",
             '{"prompt_template": "Review:"}\n{"text": "A.", "label": "pos"}\n'),
        "task.jsonl:1: field 'prompt_template': must be a string containing {text}, "
        "got 'Review:'"),
    # instruction prompts (JSONL)
    "instructions: span out of range": (
        _one(load_instruction_jsonl, "prompts.jsonl",
             '{"prompt": "Summarize this.", "instruction_spans": [[0, 99]]}\n'),
        "prompts.jsonl:1: field 'instruction_spans': item 0 [0, 99] is not a non-empty range "
        "inside the prompt of 15 characters"),
    "instructions: instruction not in the prompt": (
        _one(load_instruction_jsonl, "prompts.jsonl",
             '{"prompt": "Summarize this.", "instruction": "Translate"}\n'),
        "prompts.jsonl:1: field 'instruction': item 0 'Translate' not found in the prompt"),
    "instructions: no instruction": (
        _one(load_instruction_jsonl, "prompts.jsonl", '{"prompt": "Summarize this."}\n'),
        "prompts.jsonl:1: field 'instruction': missing: give 'instruction' (substrings of the "
        "prompt) or 'instruction_spans' ([[start, end], ...])"),
    # the Wu et al. TSV
    "wu2024: missing column": (
        _one(load_wu2024, "FinalDataset.tsv", "ID\tPrompt\tResponse\nx\ty\tz\n"),
        "FinalDataset.tsv:1: field 'Instruct&Context': header needs columns ID, Prompt, "
        "Response, Instruct&Context; missing Instruct&Context"),
    "wu2024: row without the Instruct&Context cell": (
        _one(load_wu2024, "FinalDataset.tsv", WU_HEADER + "x\tWrite.\tOk.\n"),
        "FinalDataset.tsv:2: expected 4 tab-separated cells, got 3"),
    "wu2024: empty prompt": (
        _one(load_wu2024, "FinalDataset.tsv", WU_HEADER + 'x\t""\tOk.\tWrite.&&&\n'),
        "FinalDataset.tsv:2: field 'Prompt': empty"),
    "wu2024: duplicate ID": (
        _one(load_wu2024, "FinalDataset.tsv",
             WU_HEADER + "x\tWrite.\tOk.\tWrite.&&&\nx\tRead.\tOk.\tRead.&&&\n"),
        "FinalDataset.tsv:3: field 'ID': duplicate ID 'x' (first on line 2)"),
    # word frequencies
    "vocabulary: no tab": (
        _one(load_word_frequencies, "vocab.tsv", "the\t0.1\nsea 0.2\n"),
        "vocab.tsv:2: field 'frequency': expected 'word<TAB>frequency', found no tab"),
    "vocabulary: frequency not a number": (
        _one(load_word_frequencies, "vocab.tsv", "the\tlots\n"),
        "vocab.tsv:1: field 'frequency': not a number: 'lots'"),
    "vocabulary: repeated word": (
        _one(load_word_frequencies, "vocab.tsv", "the\t0.1\nthe\t0.2\n"),
        "vocab.tsv:2: field 'word': word 'the' repeats line 1"),
    # stored levels (.npz + tokens JSONL)
    "levels: npz without the id": (
        _levels({"b": np.zeros((2, 1), np.uint8)}),
        "m_tokens.jsonl:1: field 'id': no matrix for id 'a' in {root}/m_levels.npz"),
    "levels: matrix rows differ from the prompt pieces": (
        _levels({"a": np.zeros((3, 1), np.uint8)}, TOKENS.replace("[2, 1]", "[3, 1]")),
        "m_tokens.jsonl:1: field 'input_tokens': 2 prompt pieces but the matrix has 3 rows"),
    "levels: shape field differs from the matrix": (
        _levels({"a": np.zeros((3, 1), np.uint8)}),
        "m_tokens.jsonl:1: field 'shape': matrix 'a' in m_levels.npz has shape [3, 1]"),
    "levels: level out of range": (
        _levels({"a": np.full((2, 1), 11, np.uint8)}),
        "m_levels.npz: matrix 'a' holds levels outside 0..10 (11..11)"),
    "levels: object array": (
        _levels({"a": np.array([[None], [1]], dtype=object)}),
        "m_levels.npz: cannot read matrix 'a': it holds Python objects (pickled data), which "
        "tunescope never loads"),
    "levels: not an npz": (
        _levels(raw=b"hello"),
        "m_levels.npz: cannot read as an .npz archive: no zip signature at the start"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_error_message(tmp_path, case):
    (load, files), expected = CASES[case]
    for name, text in files.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text.encode() if isinstance(text, str) else text)
    with pytest.raises(DataError) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load(tmp_path)
    assert str(info.value) == f"{tmp_path}/" + expected.replace("{root}", str(tmp_path))


# --- regressions: bugs the fuzzing found ------------------------------------------------------

@pytest.mark.parametrize("relations, message", [
    ([["P36"]], r"relations must be a relation id or a list of relation ids, got \[\['P36'\]\]"),
    ([36], r"a relation id must be a string like 'P36', got 36"),
    ([None], r"a relation id must be a string like 'P36', got None"),
])
def test_pararel_relation_arguments_of_the_wrong_type(tmp_path, relations, message):
    """Was: TypeError (unhashable list) from dict.fromkeys; now one TunescopeError line."""
    for sub, text in (("patterns", P36), ("tuples", FACT)):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "P36.jsonl").write_text(text)
    with pytest.raises(TunescopeError, match=message):
        load_pararel(tmp_path, relations=relations)


def test_vocabulary_lines_end_only_at_line_feeds(tmp_path):
    """Was: str.splitlines, which also breaks at \\x0b, \\x0c, \\x1c-\\x1e, \\x85, U+2028 and
    U+2029: words holding them were split and line numbers ran past the file's end. A leading
    byte-order mark is dropped too."""
    path = tmp_path / "vocab.tsv"
    path.write_bytes("\ufeffword\tfrequency\nsea\u2028side\t0.2\nthe\t0.3\n".encode())
    vocab = load_word_frequencies(path)
    assert vocab.words == ("the", "sea\u2028side") and vocab.frequencies == (0.3, 0.2)
    path.write_bytes(b"\x0bx\nthe\t1\n")
    with pytest.raises(DataError) as info:
        load_word_frequencies(path)
    assert str(info.value) == (f"{path}:1: field 'frequency': expected 'word<TAB>frequency', "
                               "found no tab")


@pytest.mark.parametrize("text, field", [
    ('{"labels": ["neg\\u2028x", "pos"], "label_words": {"pos": " good"}}\n', "label_words"),
    ('{"labels": ["\\u2028neg", "pos"]}\n{"text": "A.", "label": "x"}\n', "label"),
])
def test_task_messages_stay_on_one_line(tmp_path, text, field):
    """Was: labels joined raw into the message, so a label holding U+2028 broke the line."""
    path = tmp_path / "task.jsonl"
    path.write_text(text)
    with pytest.raises(DataError) as info:
        load_task(path)
    assert len(str(info.value).splitlines()) == 1 and info.value.field == field
    assert "\\u2028" in str(info.value)


def test_long_values_are_cut_in_messages(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"a": "x", "b": "y", "label": "z" * 5000}) + "\n")
    with pytest.raises(DataError) as info:
        load_pairs(path)
    assert str(info.value) == (f"{path}:1: field 'label': must be 0 or 1 (or true/false), got "
                               f"'{'z' * 56}...")


def test_fragments_are_found_after_letters_whose_lower_case_is_longer():
    """Was: the lower-cased text was indexed as if it had the original's length, so after each
    'İ' (lower case 'i' + combining dot) every located fragment shifted one character."""
    text = "\u0130" * 12 + " is a name. Say it. Then stop."
    assert find_lenient(text, "then STOP.") == (text.index("Then"), len(text))
    spans, unmatched = instruction_spans_from_fragments(text, ["Say it."])
    assert unmatched == [] and [text[a:b] for a, b in spans] == ["Say it."]
