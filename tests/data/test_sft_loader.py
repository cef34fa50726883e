"""load_sft: every accepted format (JSONL fields, Alpaca "output", chat messages, CSV, TSV),
the one-line error naming file, line and field for each kind of bad input, max_examples, and
the ``sft`` kind of check_dataset."""

from __future__ import annotations

import json

import pytest

from tunescope.data.check import KINDS, check_dataset
from tunescope.data.sft import SFTExample, builtin_sft, builtin_sft_path, load_sft
from tunescope.errors import DataError, TunescopeError


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def _jsonl(path, rows):
    return _write(path, "".join((r if isinstance(r, str) else json.dumps(r)) + "\n"
                                for r in rows))


def _user(text):
    return {"role": "user", "content": text}


def _assistant(text):
    return {"role": "assistant", "content": text}


# --- formats ---------------------------------------------------------------------------------

def test_jsonl_fields(tmp_path):
    path = _jsonl(tmp_path / "mine.jsonl", [
        {"id": "a", "instruction": "Add 2 and 3.", "response": "5", "category": "math"},
        "",
        {"instruction": " Summarise this. ", "input": "A long text.", "response": "Short.",
         "split": "heldout"},
        {"instruction": "Say hi.", "input": "", "response": "Hi!", "id": 7},
    ])
    a, b, c = load_sft(path)
    assert a == SFTExample("a", (_user("Add 2 and 3."), _assistant("5")), "math", "train")
    assert (a.instruction, a.response) == ("Add 2 and 3.", "5")
    assert b.id == "mine-3" and b.split == "heldout" and b.category == ""
    assert b.messages == (_user("Summarise this.\n\nA long text."), _assistant("Short."))
    assert b.instruction == "Summarise this.\n\nA long text."
    assert c.id == "7" and c.messages == (_user("Say hi."), _assistant("Hi!"))


def test_alpaca_output_is_the_response(tmp_path):
    path = _jsonl(tmp_path / "alpaca.jsonl", [
        {"instruction": "Give a synonym for big.", "input": "", "output": "Large."}])
    (example,) = load_sft(path)
    assert example.response == "Large." and example.id == "alpaca-1"


def test_chat_messages(tmp_path):
    chat = [{"role": "system", "content": "Be brief."}, _user("Hi"), _assistant("Hello."),
            {"role": "user", "content": "Add 1 and 1.", "name": "x"}, _assistant(" 2 ")]
    path = _jsonl(tmp_path / "chat.jsonl", [{"messages": chat, "category": "chat"}])
    (example,) = load_sft(path)
    assert example.messages == ({"role": "system", "content": "Be brief."}, _user("Hi"),
                                _assistant("Hello."), _user("Add 1 and 1."), _assistant("2"))
    assert (example.instruction, example.response) == ("Hi", "2")
    assert (example.id, example.category, example.split) == ("chat-1", "chat", "train")


def test_from_fields():
    plain = SFTExample.from_fields("x", "Do it.", "", "Done.")
    assert plain.messages == (_user("Do it."), _assistant("Done."))
    with_input = SFTExample.from_fields("y", "Sort:", "b, a", "a, b", category="lists",
                                        split="heldout")
    assert with_input.messages[0]["content"] == "Sort:\n\nb, a"
    assert (with_input.category, with_input.split) == ("lists", "heldout")


def test_csv_and_tsv(tmp_path):
    csv_path = _write(tmp_path / "rows.csv",
                      "Instruction,input,response,category,id,notes\n"
                      "Reverse the list.,\"a, b\",\"b, a\",lists,,x\n"
                      "\n"
                      "\"Write two lines.\",,\"One\nTwo\",writing,w1,y\n"
                      "Say yes.,,Yes.,,,\n")
    first, second, third = load_sft(csv_path)
    assert first == SFTExample("rows-2", (_user("Reverse the list.\n\na, b"), _assistant("b, a")),
                               "lists")
    assert second.id == "w1" and second.response == "One\nTwo"
    assert third.id == "rows-6" and third.category == ""
    tsv_path = _write(tmp_path / "rows.tsv", "instruction\toutput\tsplit\n"
                                             "Name a colour.\tBlue.\theldout\n")
    (example,) = load_sft(tsv_path)
    assert (example.id, example.response, example.split) == ("rows-2", "Blue.", "heldout")


def test_max_examples_keeps_the_first(tmp_path):
    path = _jsonl(tmp_path / "d.jsonl", [{"instruction": f"Q{k}", "response": f"A{k}"}
                                         for k in range(5)])
    assert [e.response for e in load_sft(path, max_examples=2)] == ["A0", "A1"]
    assert len(load_sft(path, max_examples=10)) == 5
    for bad in (0, -1, 1.5, True):
        with pytest.raises(TunescopeError, match="max_examples must be a positive integer"):
            load_sft(path, max_examples=bad)


def test_utf8_bom_and_crlf(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"instruction": "Caf\u00e9?",
                                                   "response": "Oui."}).encode() + b"\r\n")
    (example,) = load_sft(path)
    assert example.instruction == "Caf\u00e9?"


# --- errors ----------------------------------------------------------------------------------

MESSAGES_OK = [_user("Hi"), _assistant("Hello")]

JSONL_ERRORS = {
    "missing instruction": ({"response": "x"},
                            "1: field 'instruction': missing: give 'instruction' and "
                            "'response', or 'messages'"),
    "missing response": ({"instruction": "x"}, "1: field 'response': missing"),
    "wrong type": ({"instruction": 3, "response": "x"},
                   "1: field 'instruction': must be a non-empty string, got 3"),
    "empty text": ({"instruction": "x", "response": "  "},
                   "1: field 'response': must be a non-empty string, got '  '"),
    "empty output": ({"instruction": "x", "output": ""},
                     "1: field 'output': must be a non-empty string, got ''"),
    "input not a string": ({"instruction": "x", "input": 5, "response": "y"},
                           "1: field 'input': must be a string, got 5"),
    "response and output": ({"instruction": "x", "response": "y", "output": "z"},
                            "1: field 'output': give either 'response' or 'output', not both"),
    "category not a string": ({"instruction": "x", "response": "y", "category": 1},
                              "1: field 'category': must be a string, got 1"),
    "unknown split": ({"instruction": "x", "response": "y", "split": "test"},
                      "1: field 'split': must be 'train' or 'heldout', got 'test'"),
    "bad id": ({"id": ["a"], "instruction": "x", "response": "y"},
               "1: field 'id': must be a non-empty string, got ['a']"),
    "empty id": ({"id": " ", "instruction": "x", "response": "y"},
                 "1: field 'id': must be a non-empty string, got ' '"),
    "messages not a list": ({"messages": "hi"},
                            "1: field 'messages': must be a non-empty list of messages, got 'hi'"),
    "no messages": ({"messages": []},
                    "1: field 'messages': must be a non-empty list of messages, got []"),
    "message not an object": ({"messages": ["hi", _assistant("a")]},
                              "1: field 'messages[0]': must be an object with 'role' and "
                              "'content', got 'hi'"),
    "unknown role": ({"messages": [{"role": "bot", "content": "x"}, _assistant("a")]},
                     "1: field 'messages[0].role': unknown role (got 'bot'); expected system, "
                     "user or assistant"),
    "missing role": ({"messages": [_user("q"), {"content": "x"}]},
                     "1: field 'messages[1].role': unknown role (missing); expected system, "
                     "user or assistant"),
    "empty content": ({"messages": [_user("q"), _assistant("")]},
                      "1: field 'messages[1].content': must be a non-empty string, got ''"),
    "missing content": ({"messages": [{"role": "user"}, _assistant("a")]},
                        "1: field 'messages[0].content': missing"),
    "not ending in assistant": ({"messages": [_assistant("a"), _user("q")]},
                                "1: field 'messages': must end with an assistant turn, got a "
                                "'user' turn last"),
    "no user turn": ({"messages": [{"role": "system", "content": "s"}, _assistant("a")]},
                     "1: field 'messages': has no user turn"),
    "system later": ({"messages": [_user("q"), {"role": "system", "content": "s"},
                                   _assistant("a")]},
                     "1: field 'messages[1].role': a system message may only come first"),
    "messages and fields": ({"messages": MESSAGES_OK, "instruction": "x"},
                            "1: field 'messages': give either 'messages' or instruction/response "
                            "fields, not both (also has 'instruction')"),
    "not an object": ("[1, 2]", "1: expected a JSON object, got list"),
    "invalid JSON": ('{"instruction": }', "1: invalid JSON (Expecting value, column 17)"),
}


@pytest.mark.parametrize("case", sorted(JSONL_ERRORS))
def test_jsonl_errors_name_file_line_and_field(tmp_path, case):
    row, tail = JSONL_ERRORS[case]
    path = _jsonl(tmp_path / "bad.jsonl", [row])
    with pytest.raises(DataError) as info:
        load_sft(path)
    assert str(info.value) == f"{path}:{tail}"
    assert "\n" not in str(info.value) and info.value.path == str(path) and info.value.line == 1


def test_error_on_a_later_line_and_duplicate_ids(tmp_path):
    good = {"instruction": "x", "response": "y"}
    path = _jsonl(tmp_path / "d.jsonl", [good, "", {**good, "id": "k"}, {**good, "id": "k"}])
    with pytest.raises(DataError) as info:
        load_sft(path)
    assert str(info.value) == f"{path}:4: field 'id': duplicate id 'k' (first on line 3)"
    assert (info.value.line, info.value.field) == (4, "id")
    clash = _jsonl(tmp_path / "c.jsonl", [{**good, "id": "c-2"}, good])
    with pytest.raises(DataError, match=r"c\.jsonl:2: field 'id': duplicate id 'c-2' \(first on "
                                        r"line 1\)$"):
        load_sft(clash)


def test_csv_errors(tmp_path):
    cases = {
        "instruction,answer\nx,y\n":
            "1: field 'response': header needs columns instruction and response (or output), "
            "got ['instruction', 'answer']",
        "prompt,response\nx,y\n":
            "1: field 'instruction': header needs columns instruction and response (or output), "
            "got ['prompt', 'response']",
        "instruction,response\nonly\n": "2: field 'response': missing",
        "instruction,response\n\"\",y\n":
            "2: field 'instruction': must be a non-empty string, got ''",
        "instruction,response,split\nx,y,dev\n":
            "2: field 'split': must be 'train' or 'heldout', got 'dev'",
        "instruction,response,id\nx,y,a\n\"p\nq\",z,a\n":
            "3: field 'id': duplicate id 'a' (first on line 2)",
    }
    for k, (text, tail) in enumerate(cases.items()):
        path = _write(tmp_path / f"bad{k}.csv", text)
        with pytest.raises(DataError) as info:
            load_sft(path)
        assert str(info.value) == f"{path}:{tail}"


def test_file_level_errors(tmp_path):
    def message(path):
        with pytest.raises(DataError) as info:
            load_sft(path)
        return str(info.value)

    empty = _write(tmp_path / "empty.jsonl", "\n  \n")
    assert message(empty) == f"{empty}: no examples in file (empty)"
    header = _write(tmp_path / "header.csv", "instruction,response\n")
    assert message(header) == f"{header}: no examples in file (empty or header only)"
    json_file = _write(tmp_path / "data.json", "[]")
    assert message(json_file) == (f"{json_file}: unknown instruction-tuning format '.json': "
                                  "expected .jsonl, .csv or .tsv")
    bare = _write(tmp_path / "data", "")
    assert message(bare) == (f"{bare}: unknown instruction-tuning format (no extension): "
                             "expected .jsonl, .csv or .tsv")
    assert message(tmp_path / "missing.jsonl") == f"{tmp_path / 'missing.jsonl'}: no such file"
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes(b'{"instruction": "caf\xe9", "response": "x"}\n')
    assert message(latin1) == f"{latin1}: not UTF-8 text (invalid continuation byte at byte 20)"
    utf16 = tmp_path / "utf16.jsonl"
    utf16.write_bytes('{"instruction": "x", "response": "y"}\n'.encode("utf-16"))
    assert message(utf16).startswith(f"{utf16}: not UTF-8 text (it starts with a UTF-16-LE "
                                     "byte-order mark")


# --- the built-in set and `datasets check` ---------------------------------------------------

def test_builtin_split_argument():
    assert len(builtin_sft("heldout")) == 100
    assert len(builtin_sft()) == len(builtin_sft("train")) + 100
    with pytest.raises(TunescopeError, match="unknown split 'test'"):
        builtin_sft("test")


def test_check_dataset_sft(tmp_path):
    assert "sft" in KINDS
    path = _jsonl(tmp_path / "mine.jsonl", [
        {"instruction": "a", "response": "b", "category": "math"},
        {"instruction": "c", "output": "d", "category": "math", "split": "heldout"},
        {"messages": MESSAGES_OK}])
    assert check_dataset("sft", path) == {
        "kind": "sft", "path": str(path), "examples": 3, "splits": {"train": 2, "heldout": 1},
        "categories": {"math": 2, "(none)": 1}, "warnings": []}
    summary = check_dataset("SFT", builtin_sft_path())
    assert summary["splits"]["heldout"] == 100 and summary["splits"]["train"] >= 1000
    assert len(summary["categories"]) == 7
    bad = _jsonl(tmp_path / "bad.jsonl", [{"messages": [_user("q")]}])
    with pytest.raises(DataError) as info:
        check_dataset("sft", bad)
    assert str(info.value) == (f"{bad}:1: field 'messages': must end with an assistant turn, "
                               "got a 'user' turn last")
