"""Instruction prompts (W1): the Wu et al. 2024 loaders, user JSONL, the built-in set, token masks
and the stored attribution levels with their piece alignment."""

from __future__ import annotations

import itertools
import json
import warnings
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from tiny import tiny_tokenizer

from tunescope.data.instructions import (
    BUILTIN_CATEGORIES,
    builtin_instructions,
    find_lenient,
    followed_labels,
    instruction_mask,
    instruction_mask_for,
    load_annotations,
    load_instruction_jsonl,
    load_wu2024,
    read_wu2024,
    sentence_spans,
    split_instruct_context,
    unwrap_cell,
    wu2024_source,
)
from tunescope.data.types import InstructionPrompt
from tunescope.data.wu2024_levels import (
    decode_pieces,
    load_levels,
    piece_instruction_mask,
    piece_offsets,
)
from tunescope.errors import DataError, TunescopeError


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def _jsonl(path, rows):
    return _write(path, "".join(json.dumps(r) + "\n" for r in rows))


def _squash(text: str) -> str:
    return "".join(text.split())


@pytest.fixture(scope="module")
def wu(shared_data):
    path = shared_data / "wu2024"
    if not (path / "FinalDataset.tsv").is_file():
        pytest.skip("../shared/data/wu2024 is not available")
    return path


@pytest.fixture(scope="module")
def wu_prompts(wu):
    return read_wu2024(wu / "FinalDataset.tsv")


# --- sentence splitting and fragment matching -------------------------------------------------

def test_sentence_spans_split_lines_and_drop_input_label():
    text = "Rewrite this. Make it short!  Why?\n\nInput: Hello world. Bye\nOutput:"
    got = [text[a:b] for a, b in sentence_spans(text)]
    assert got == ["Rewrite this.", "Make it short!", "Why?", "Hello world.", "Bye", "Output:"]
    assert sentence_spans("Input:") == []
    assert [("a: b"[a:b]) for a, b in sentence_spans("a: b")] == ["a:", "b"]


def test_find_lenient_ignores_case_whitespace_and_quotes():
    text = "Please  Rewrite\nthe \u201cgiven\u201d text."
    a, b = find_lenient(text, 'rewrite the "given"')
    assert text[a:b] == "Rewrite\nthe \u201cgiven\u201d"
    assert find_lenient(text, "absent") is None
    assert find_lenient(text, "   ") is None


def test_split_instruct_context_and_sources():
    assert split_instruct_context("Do A.|||Do B.\nDo C.&&&the input") == (
        ["Do A.", "Do B.", "Do C."], "the input")
    assert split_instruct_context("Only this.||| ") == (["Only this."], "")
    assert wu2024_source("user_oriented_task_7") == ("self-instruct", "")
    assert wu2024_source("lima_author_12") == ("lima", "")
    assert wu2024_source("mtbench_humanities_160") == ("mt-bench", "humanities")
    assert wu2024_source("other_1") == ("", "")
    assert unwrap_cell('"a ""b"" c"') == 'a "b" c'
    assert unwrap_cell('"Steak" rhymes with "peak."') == '"Steak" rhymes with "peak."'
    assert unwrap_cell('"') == '"'


# --- FinalDataset.tsv format (synthetic files) ------------------------------------------------

HEADER = "ID\tPrompt\tResponse\tInstruct&Context\n"


def test_load_wu2024_synthetic(tmp_path):
    rows = [
        # several fragments (||| and /n), an Input: section, context after &&&
        ("user_oriented_task_1\tRewrite the text. Keep it short./n/nInput: Hello   there./n/n"
         "Output:\tHi.\trewrite THE text|||Input: /nkeep it short.&&&Hello there."),
        # a wrapped cell with "" for a quote, and /t
        'lima_author_2\t"Say ""hi"" politely./tNow."\tHi!\t"Say ""hi"""',
        # a fragment that is not in the prompt: kept with empty spans, reported
        "mtbench_math_3\tWhat is 2 + 2?\t4\tnot in the prompt",
    ]
    path = _write(tmp_path / "final.tsv", HEADER + "\n".join(rows) + "\n\n")
    with pytest.warns(UserWarning, match=r"1 of 4 instruction fragments not found.*mtbench_math_3"
                                         r".*1 prompts have no instruction span"):
        prompts = load_wu2024(path)
    assert [p.id for p in prompts] == ["user_oriented_task_1", "lima_author_2", "mtbench_math_3"]
    p0, p1, p2 = prompts
    assert p0.text == "Rewrite the text. Keep it short.\n\nInput: Hello   there.\n\nOutput:"
    assert p0.instruction == "Rewrite the text.\nKeep it short."
    assert (p0.source, p0.context, p0.response) == ("self-instruct", "Hello there.", "Hi.")
    assert p1.text == 'Say "hi" politely.\tNow.'
    assert p1.instruction == 'Say "hi" politely.'
    assert (p2.source, p2.category, p2.instruction_spans) == ("mt-bench", "math", ())
    _, report = read_wu2024(path)
    assert (report.prompts, report.fragments, report.with_span) == (3, 4, 2)
    assert report.unmatched == [("mtbench_math_3", "not in the prompt")]


def test_load_wu2024_errors(tmp_path):
    bad = _write(tmp_path / "a.tsv", "ID\tPrompt\tResponse\nx\ty\tz\n")
    with pytest.raises(DataError, match=r"a\.tsv:1: field 'Instruct&Context'"):
        load_wu2024(bad)
    bad = _write(tmp_path / "b.tsv", HEADER + "lima_author_1\tDo it.\tok\tDo it.\n"
                 "lima_author_2\tDo it.\tok\n")
    with pytest.raises(DataError, match=r"b\.tsv:3: expected 4 tab-separated cells, got 3"):
        load_wu2024(bad)
    bad = _write(tmp_path / "c.tsv", HEADER + "x\tDo it.\tok\tDo it.\nx\tDo.\tok\tDo.\n")
    with pytest.raises(DataError, match=r"c\.tsv:3: field 'ID': duplicate"):
        load_wu2024(bad)
    bad = _write(tmp_path / "d.tsv", HEADER + "x\t \tok\tDo it.\n")
    with pytest.raises(DataError, match=r"d\.tsv:2: field 'Prompt': empty"):
        load_wu2024(bad)
    with pytest.raises(DataError, match="no prompts"):
        load_wu2024(_write(tmp_path / "e.tsv", HEADER))
    with pytest.raises(DataError, match="no such file"):
        load_wu2024(tmp_path / "missing.tsv")


def test_load_annotations_and_followed_labels_synthetic(tmp_path):
    head = "File\tModel\tPrompt\tReference\tInstruct\tResponse\tRating\n"
    rows = ["a_1.pkl\tvicuna_7B\tP1\tR\tI\tone two three four five\t4",
            "a_2.pkl\tvicuna_7B\tP2\tR\tI\tone/ntwo/nthree/nfour/nfive\t1",
            "a_3.pkl\tvicuna_7B\tP3\tR\tI\ttoo short here\t3",
            "a_4.pkl\tvicuna_7B\tP4\tR\tI\tone two three four five six\t-1",
            "a_5.pkl\tvicuna_7B\tP5\tR\tI\tone two three four five six\t2",
            "a_1.pkl\talpaca_7B\tP1\tR\tI\tone two three four five six\t-1"]
    df = load_annotations(_write(tmp_path / "ann.tsv", head + "\n".join(rows) + "\n"))
    assert list(df.columns) == ["File", "Model", "Prompt", "Reference", "Instruct", "Response",
                                "Rating", "id"]
    assert list(df.id) == ["a_1", "a_2", "a_3", "a_4", "a_5", "a_1"]
    assert df.Response[1] == "one\ntwo\nthree\nfour\nfive"
    lab = followed_labels(df, "vicuna")
    assert list(lab.id) == ["a_1", "a_2", "a_5"]
    assert list(lab.followed) == [True, False, True]
    assert followed_labels(df, "alpaca").empty
    # response length from a token count per id (the released code's rule): ids it lacks drop
    lab = followed_labels(df, "vicuna", token_counts={"a_1": 4, "a_2": 9, "a_3": 6, "a_5": 7})
    assert list(lab.id) == ["a_2", "a_3", "a_5"]
    assert list(lab.n_tokens) == [9, 6, 7]
    assert list(lab.followed) == [False, True, True]
    assert followed_labels(df, "vicuna", token_counts={"a_2": 9}).id.tolist() == ["a_2"]
    bad = _write(tmp_path / "bad.tsv", head + "a.pkl\tv\tP\tR\tI\tresp\tgood\n")
    with pytest.raises(DataError, match=r"bad\.tsv:2: field 'Rating': must be an integer"):
        load_annotations(bad)
    with pytest.raises(DataError, match=r"field 'Rating'"):
        load_annotations(_write(tmp_path / "h.tsv", "File\tModel\tPrompt\tReference\tInstruct"
                                                     "\tResponse\n"))


# --- the real release -------------------------------------------------------------------------

def test_real_final_dataset_counts(wu, wu_prompts):
    prompts, report = wu_prompts
    assert len(prompts) == 632
    assert Counter(p.source for p in prompts) == {"self-instruct": 252, "lima": 300,
                                                  "mt-bench": 80}
    assert Counter(p.category for p in prompts if p.source == "mt-bench") == {
        c: 10 for c in ("writing", "roleplay", "reasoning", "math", "coding", "extraction",
                        "stem", "humanities")}
    assert (report.fragments, len(report.unmatched), report.with_span) == (1173, 0, 632)
    assert sum(bool(p.context) for p in prompts) == 65
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_wu2024(wu / "FinalDataset.tsv")) == 632
    by_id = {p.id: p for p in prompts}
    p = by_id["user_oriented_task_0"]
    assert p.instruction.split("\n") == [
        "The sentence you are given might be too wordy, complicated, or unclear.",
        "Rewrite the sentence and make your writing clearer by keeping it concise.",
        ("Whenever possible, break complex sentences into multiple sentences and eliminate "
         "unnecessary words.")]
    assert p.context.startswith("If you have any questions about my rate")
    assert "\nInput: If you have" in p.text and p.text.endswith("\n\nOutput:")
    assert by_id["mtbench_math_111"].instruction == "What is the area of the triangle?"
    # "Input: Matilda" is listed as a fragment: the label is dropped, the sentence is marked
    assert by_id["user_oriented_task_137"].instruction == (
        "Give a brief description of the book that you are given.\nMatilda")
    assert not any(p.text[a:b].lower().startswith("input:") for p in prompts
                   for a, b in p.instruction_spans)
    # wrapped and unwrapped cells starting with a quote
    assert by_id["lima_author_26"].response.startswith('"The Lottery Ticket Hypothesis" is')
    assert by_id["lima_author_196"].response == '"Steak" rhymes with the word "peak."'


def test_real_annotations(wu, wu_prompts):
    df = load_annotations(wu / "AnnotatedDataset.tsv")
    assert len(df) == 1264
    assert Counter(df.Model) == {"vicuna_7B": 632, "alpaca_7B": 632}
    prompts = {p.id: p.text for p in wu_prompts[0]}
    assert set(df.id) == set(prompts)
    assert all(prompts[i] == t for i, t in zip(df.id, df.Prompt))
    lab = followed_labels(df)
    assert len(lab) == 605
    assert Counter(lab.followed) == {True: 495, False: 110}
    assert (lab.n_tokens >= 5).all() and lab.Rating.between(1, 4).all()
    # the released code's selection: >= 5 response pieces of the stored Vicuna attribution
    with open(wu / "vicuna_7b_tokens.jsonl", encoding="utf-8") as f:
        counts = {r["id"]: len(r["output_tokens"]) for r in map(json.loads, f)}
    lab = followed_labels(df, token_counts=counts)
    assert len(lab) == 616
    assert Counter(lab.followed) == {True: 503, False: 113}


def test_real_levels_and_piece_alignment(wu, wu_prompts):
    by_id = {p.id: p for p in wu_prompts[0]}
    llama = load_levels(wu / "llama_7b_levels.npz", wu / "llama_7b_tokens.jsonl")
    vicuna = load_levels(wu / "vicuna_7b_levels.npz", wu / "vicuna_7b_tokens.jsonl")
    assert len(llama) == len(vicuna) == 632 and set(llama) == set(by_id)
    assert llama["user_oriented_task_93"].levels.shape == (199, 0)  # empty response
    for stored in (llama["lima_author_1"], vicuna["lima_author_1"]):
        assert stored.levels.shape == (len(stored.prompt_pieces), len(stored.response_pieces))
        assert stored.levels.max() == 10 and stored.levels.min() == 0
        assert stored.prompt_text[1:] == by_id["lima_author_1"].text
    for pid in ("user_oriented_task_0", "user_oriented_task_137", "user_oriented_task_3",
                "lima_author_1", "mtbench_math_111", "mtbench_coding_126"):
        prompt, stored = by_id[pid], vicuna[pid]
        mask = piece_instruction_mask(stored.prompt_pieces, prompt)
        assert mask.shape == (len(stored.prompt_pieces),) and mask.any()
        marked = decode_pieces([t for t, m in zip(stored.prompt_pieces, mask) if m])[0]
        assert _squash(marked) == _squash("".join(prompt.text[a:b]
                                                  for a, b in prompt.instruction_spans)), pid
    mask = piece_instruction_mask(vicuna["user_oriented_task_137"].prompt_pieces,
                                  by_id["user_oriented_task_137"])
    pieces = vicuna["user_oriented_task_137"].prompt_pieces
    assert [t for t, m in zip(pieces, mask) if not m] == [
        "<0x0A>", "<0x0A>", "Input", ":", "<0x0A>", "<0x0A>", "Output", ":"]


# --- stored levels (synthetic files) ----------------------------------------------------------

def _levels_files(tmp_path, rows, arrays):
    npz = tmp_path / "m_levels.npz"
    np.savez(npz, **arrays)
    return npz, _jsonl(tmp_path / "m_tokens.jsonl", rows)


def test_load_levels_synthetic_and_errors(tmp_path):
    ok = {"id": "a", "input_tokens": ["\u2581Hi", "."], "output_tokens": ["\u2581Yes"],
          "shape": [2, 1]}
    empty = {"id": "b", "input_tokens": ["\u2581Hi"], "output_tokens": [], "shape": [0]}
    npz, js = _levels_files(tmp_path, [ok, empty], {"a": np.array([[10], [3]], np.uint8),
                                                    "b": np.zeros(0, np.uint8)})
    out = load_levels(npz, js)
    assert list(out) == ["a", "b"]
    assert out["a"].levels.tolist() == [[10], [3]] and out["a"].prompt_text == " Hi."
    assert out["a"].response_text == " Yes"
    assert out["b"].levels.shape == (1, 0)

    def fails(rows, arrays, match):
        npz, js = _levels_files(tmp_path, rows, arrays)
        with pytest.raises(DataError, match=match):
            load_levels(npz, js)

    arr = {"a": np.array([[10], [3]], np.uint8)}
    fails([dict(ok, shape=[1, 2])], arr, r"m_tokens\.jsonl:1: field 'shape'")
    fails([dict(ok, input_tokens=["x"], shape=[2, 1])], arr,
          r"m_tokens\.jsonl:1: field 'input_tokens': 1 prompt pieces but the matrix has 2 rows")
    fails([dict(ok, output_tokens=[], shape=[2, 1])], arr, r":1: field 'output_tokens'")
    fails([ok, dict(ok, id="zz")], arr, r"m_tokens\.jsonl:2: field 'id': no matrix for id 'zz'")
    fails([ok, ok], arr, r":2: field 'id': duplicate")
    fails([dict(ok, shape="2x1")], arr, r":1: field 'shape'")
    fails([{k: v for k, v in ok.items() if k != "output_tokens"}], arr,
          r":1: field 'output_tokens': missing")
    fails([ok], {"a": np.array([[11], [3]], np.int64)}, r"levels outside 0\.\.10")
    fails([ok], {"a": np.array([[1.0], [3.0]])}, r"integer levels")
    fails([ok], {"a": np.array([[{}], [1]], dtype=object)}, r"cannot read matrix 'a'")
    np.save(tmp_path / "single.npy", np.zeros((2, 1)))
    with pytest.raises(DataError, match="single array"):
        load_levels(tmp_path / "single.npy", js)
    with pytest.raises(DataError, match="cannot read"):
        load_levels(_write(tmp_path / "junk.npz", "not a zip"), js)
    npz, js = _levels_files(tmp_path, [ok], {"a": np.array([[10], [3]], np.uint8),
                                             "extra": np.zeros((1, 1), np.uint8)})
    with pytest.warns(UserWarning, match="1 matrices have no row"):
        load_levels(npz, js)


def test_decode_pieces_and_robust_alignment():
    text, ranges = decode_pieces(["\u2581a", "<0xE6>", "<0x97>", "<0xA5>", "b", "<0x0A>",
                                  "<0x0A>", "\u2581c"])
    assert text == " a\u65e5b\n\n c"
    assert ranges == [(0, 2), (2, 3), (2, 3), (2, 3), (3, 4), (4, 5), (5, 6), (6, 8)]
    assert decode_pieces(["<s>", "\u2581x"]) == (" x", [(0, 0), (0, 2)])
    # the pieces' text differs from the prompt: extra / missing whitespace ...
    pieces = ["\u2581Sum", "mar", "ize", "\u2581this", ".", "<0x0A>", "Input", ":", "\u2581Hello",
              "\u2581world", "."]
    prompt = InstructionPrompt("x", "Summarize  this.\r\nInput:Hello world.", ((0, 16),))
    offs = piece_offsets(pieces, prompt.text)
    # (a piece's leading space maps to the whitespace before its word)
    assert [prompt.text[slice(*o)].strip() for o in offs[:5]] == ["Sum", "mar", "ize", "this",
                                                                  "."]
    assert offs[0] == (0, 3) and all(o is not None for o in offs)
    assert piece_instruction_mask(pieces, prompt).tolist() == [True] * 5 + [False] * 6
    # ... and a changed character (difflib fallback): the other pieces still align
    prompt2 = InstructionPrompt("y", "Summarise this.\nInput: Hello world.", ((0, 15),))
    assert piece_instruction_mask(pieces, prompt2).tolist() == [True] * 5 + [False] * 6
    offs2 = piece_offsets(pieces, prompt2.text)
    assert prompt2.text[slice(*offs2[8])] == "Hello" and prompt2.text[slice(*offs2[3])] == "this"


# --- user JSONL -------------------------------------------------------------------------------

def test_load_instruction_jsonl(tmp_path):
    rows = [
        {"id": "a", "prompt": "Summarize the text below.\nInput: Cats sleep a lot.\nBe brief.",
         "instruction": ["Summarize the text below.", "Be brief."], "context": "Cats sleep a lot.",
         "category": "writing"},
        {"prompt": "Translate: hello", "instruction": "Translate:", "source": "mine"},
        {"id": 7, "prompt": "Do it. Do it.", "instruction": ["Do it.", "Do it."]},
        {"id": "s", "prompt": "Classify this: good", "instruction_spans": [[0, 13]]},
    ]
    out = load_instruction_jsonl(_jsonl(tmp_path / "u.jsonl", rows), default_source="user")
    a, b, c, d = out
    assert a.instruction_spans == ((0, 25), (51, 60))
    assert a.instruction == "Summarize the text below.\nBe brief."
    assert (a.context, a.category, a.source) == ("Cats sleep a lot.", "writing", "user")
    assert (b.id, b.source, b.instruction) == ("u-2", "mine", "Translate:")
    assert c.id == "7" and c.instruction_spans == ((0, 6), (7, 13))
    assert d.instruction == "Classify this"


@pytest.mark.parametrize("row, match", [
    ({"id": "a", "instruction": "x"}, r"u\.jsonl:2: field 'prompt': missing"),
    ({"prompt": "  ", "instruction": "x"}, r":2: field 'prompt': must be a non-empty string"),
    ({"prompt": "Do this.", "instruction": ["Do that."]},
     r"u\.jsonl:2: field 'instruction': item 0 'Do that\.' not found in the prompt"),
    ({"prompt": "Do this.", "instruction": ["Do this.", "Do this."]},
     r"field 'instruction': item 1 .* fewer times"),
    ({"prompt": "Do this.", "instruction": []}, r"field 'instruction': must be a non-empty"),
    ({"prompt": "Do this.", "instruction": [3]}, r"field 'instruction': item 0 must be"),
    ({"prompt": "Do this.", "instruction_spans": [[0, 99]]},
     r"u\.jsonl:2: field 'instruction_spans': item 0 \[0, 99\] is not a non-empty range"),
    ({"prompt": "Do this.", "instruction_spans": [[3, 3]]}, r"field 'instruction_spans'"),
    ({"prompt": "Do this.", "instruction_spans": [[0, "2"]]},
     r"field 'instruction_spans': item 0 must be a \[start, end\] pair"),
    ({"prompt": "Do this.", "instruction_spans": [0, 2]}, r"field 'instruction_spans'"),
    ({"prompt": "Do this.", "instruction": "Do", "instruction_spans": [[0, 2]]}, r"not both"),
    ({"prompt": "Do this."}, r":2: field 'instruction': missing"),
    ({"id": "ok", "prompt": "Do this.", "instruction": "Do"}, r":2: field 'id': duplicate"),
    ({"prompt": "Do this.", "instruction": "Do", "context": 5}, r"field 'context': must be"),
])
def test_load_instruction_jsonl_errors(tmp_path, row, match):
    path = _jsonl(tmp_path / "u.jsonl", [{"id": "ok", "prompt": "Fine.", "instruction": "Fine."},
                                         row])
    with pytest.raises(DataError, match=match):
        load_instruction_jsonl(path)


def test_load_instruction_jsonl_bad_json_and_empty(tmp_path):
    with pytest.raises(DataError, match=r"u\.jsonl:1: invalid JSON"):
        load_instruction_jsonl(_write(tmp_path / "u.jsonl", "{nope\n"))
    with pytest.raises(DataError, match="no prompts"):
        load_instruction_jsonl(_write(tmp_path / "e.jsonl", "\n"))


# --- the built-in set -------------------------------------------------------------------------

def test_builtin_instructions_invariants():
    prompts = builtin_instructions()
    assert len(prompts) >= 60
    assert len({p.id for p in prompts}) == len(prompts)
    cats = Counter(p.category for p in prompts)
    assert set(cats) == set(BUILTIN_CATEGORIES) and min(cats.values()) >= 8
    assert all(p.source == "builtin" and p.instruction_spans for p in prompts)
    with_input = [p for p in prompts if "\nInput: " in p.text]
    assert len(with_input) >= 20
    for p in with_input:
        # the input is the context, and no instruction span reaches into it
        assert p.context and p.context in p.text
        start = p.text.index("\nInput: ") + len("\nInput: ")
        end = start + len(p.context)
        assert p.text[start:end] == p.context
        assert not any(a < end and start < b for a, b in p.instruction_spans), p.id
    assert sum(len(p.instruction_spans) > 1 for p in prompts) >= 10
    assert sum("\n" in p.instruction for p in prompts) >= 5
    assert sum("\n" in p.text for p in prompts) >= 20
    for p in prompts:
        assert p.text == p.text.strip() and "  " not in p.text.replace("    ", "")
        assert all(p.text[a:b] == p.text[a:b].strip() for a, b in p.instruction_spans)
        spans = sorted(p.instruction_spans)
        assert all(b1 <= a2 for (_, b1), (a2, _) in itertools.pairwise(spans))
    assert builtin_instructions() == prompts  # cached, returns an equal copy


# --- token masks ------------------------------------------------------------------------------

def _marked_text(prompt, offsets, mask):
    return "".join(prompt.text[a:b] for (a, b), m in zip(offsets, mask) if m)


def test_instruction_mask_several_spans_newlines_and_input():
    text = "Summarize the text below.\nInput: The capital of France is Paris.\nAnswer in one line."
    prompt = InstructionPrompt("t", text, ((0, 25), (65, 84)))
    assert prompt.instruction == "Summarize the text below.\nAnswer in one line."
    tok = tiny_tokenizer()
    assert tok.is_fast
    enc = tok(text, return_offsets_mapping=True)
    offsets = [tuple(o) for o in enc["offset_mapping"]]
    ids, mask = instruction_mask_for(tok, prompt)
    assert ids == enc["input_ids"]
    assert len(mask) == len(ids)
    assert ids[0] == tok.bos_token_id and offsets[0] == (0, 0) and mask[0] is False
    assert mask == instruction_mask(prompt, offsets)
    # every instruction character is covered by a marked token, no context character is
    covered = set()
    for (a, b), m in zip(offsets, mask):
        if m:
            covered.update(range(a, b))
    assert set(range(25)) | set(range(65, 84)) <= covered
    context_start = text.index("Input:")
    assert not covered & set(range(context_start, 64))
    assert _squash(_marked_text(prompt, offsets, mask)) == _squash(prompt.instruction)
    # the newline tokens and the Input: label are not instruction tokens
    for (a, b), m in zip(offsets, mask):
        if b > a and text[a:b].strip() in ("", "Input", ":", "Input:"):
            assert not m


def test_instruction_mask_offsets_directly():
    prompt = InstructionPrompt("t", "Do A.\nctx\nDo B.", ((0, 5), (10, 15)))
    offsets = [(0, 0), (0, 2), (2, 5), (5, 6), (6, 9), (9, 10), (10, 12), (12, 15), (0, 0)]
    assert instruction_mask(prompt, offsets) == [False, True, True, False, False, False, True,
                                                 True, False]
    assert instruction_mask(InstructionPrompt("u", "abc", ()), [(0, 3)]) == [False]
    assert instruction_mask(prompt, np.array([[0, 1], [4, 6]])) == [True, True]


def test_instruction_mask_for_needs_a_fast_tokenizer():
    class Slow:
        is_fast = False
    with pytest.raises(TunescopeError, match="fast tokenizer"):
        instruction_mask_for(Slow(), InstructionPrompt("t", "Hi.", ((0, 3),)))


def test_builtin_masks_with_tiny_tokenizer():
    tok = tiny_tokenizer(bos=False)
    for p in builtin_instructions():
        _, mask = instruction_mask_for(tok, p)
        offsets = tok(p.text, return_offsets_mapping=True)["offset_mapping"]
        covered = {i for (a, b), m in zip(offsets, mask) if m for i in range(a, b)}
        assert all(i in covered for a, b in p.instruction_spans for i in range(a, b)), p.id
        if "\nInput: " in p.text:
            start = p.text.index("\nInput: ") + len("\nInput: ")
            context = set(range(start, start + len(p.context)))
            assert not covered & context and not all(mask), p.id


def test_annotation_frame_is_pandas(tmp_path):
    head = "File\tModel\tPrompt\tReference\tInstruct\tResponse\tRating\n"
    df = load_annotations(_write(tmp_path / "x.tsv", head))
    assert isinstance(df, pd.DataFrame) and df.empty and "id" in df.columns
