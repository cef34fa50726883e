"""check_dataset: a user's file or directory loaded by its loader and summarised in counts; the
loader's one-line error for bad input; ``tunescope datasets check`` once the CLI has it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tunescope.data.check import KINDS, check_dataset
from tunescope.data.pararel import builtin_pararel_path
from tunescope.errors import DataError, TunescopeError

WU_HEADER = "ID\tPrompt\tResponse\tInstruct&Context\n"


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _jsonl(path, rows):
    return _write(path, "".join(json.dumps(r) + "\n" for r in rows))


def test_pararel_directory(tmp_path):
    _jsonl(tmp_path / "patterns" / "P36.jsonl",
           [{"pattern": "The capital of [X] is [Y]."}, {"pattern": "[Y] is the capital of [X]."}])
    _jsonl(tmp_path / "tuples" / "P36.jsonl", [{"sub_label": "France", "obj_label": "Paris"},
                                               {"sub_label": "Italy", "obj_label": "Rome"}])
    assert check_dataset("pararel", tmp_path) == {
        "kind": "pararel", "path": str(tmp_path), "relations": 1, "templates": 2,
        "templates_y_last": 1, "facts": 2, "warnings": []}


def test_builtin_pararel_counts():
    summary = check_dataset("pararel", builtin_pararel_path())
    assert (summary["relations"], summary["templates"], summary["facts"]) == (12, 65, 494)


def test_pairs_task_instructions_vocabulary(tmp_path):
    pairs = _write(tmp_path / "pairs.csv", "a,b,label,source\nA cat.,A cat sat.,1,mine\n"
                                           "He ran.,She ran.,0,\nI am.,I'm.,true,mine\n")
    assert check_dataset("pairs", pairs) == {
        "kind": "pairs", "path": str(pairs), "pairs": 3, "paraphrases": 2, "non_paraphrases": 1,
        "sources": {"mine": 2, "(none)": 1}, "warnings": []}
    task = _jsonl(tmp_path / "task.jsonl", [
        {"text": "Great film.", "label": "pos", "perturbations": {"typo": "Graet film."}},
        {"text": "Dull film.", "label": "neg"}, {"text": "Fine.", "label": "pos"}])
    assert check_dataset("task", task) == {
        "kind": "task", "path": str(task), "name": "task", "examples": 3,
        "labels": {"neg": 1, "pos": 2}, "perturbations": {"typo": 1}, "warnings": []}
    prompts = _jsonl(tmp_path / "prompts.jsonl", [
        {"prompt": "Summarize this.\nInput: x", "instruction": "Summarize this.",
         "context": "x", "category": "writing"},
        {"prompt": "Add 2 and 3. Be brief.", "instruction": ["Add 2 and 3.", "Be brief."]}])
    assert check_dataset("instructions", prompts) == {
        "kind": "instructions", "path": str(prompts), "prompts": 2, "instruction_spans": 3,
        "with_context": 1, "categories": {"writing": 1, "(none)": 1}, "warnings": []}
    vocab = _write(tmp_path / "vocab.tsv", "word\tfrequency\nsea\t0.1\nthe\t0.5\n")
    assert check_dataset("vocabulary", vocab) == {
        "kind": "vocabulary", "path": str(vocab), "words": 2, "top": ["the", "sea"],
        "warnings": []}


def test_wu2024_file_and_release_directory(tmp_path):
    final = _write(tmp_path / "FinalDataset.tsv", WU_HEADER +
                   "lima_author_1\tWrite a poem. Keep it short.\tThe sea.\tWrite a poem.&&&\n"
                   "mtbench_math_2\tAdd 2 and 3.\t5\tMultiply them.&&&\n")
    expected = {"kind": "wu2024", "path": str(final), "prompts": 2, "instruction_spans": 1,
                "with_context": 0, "categories": {"(none)": 1, "math": 1},
                "sources": {"lima": 1, "mt-bench": 1}, "fragments": 2,
                "fragments_not_found": 1, "prompts_without_span": 1,
                "warnings": [f"{final}: 1 of 2 instruction fragments not found in their prompt "
                             "(first: 'mtbench_math_2'); 1 prompts have no instruction span "
                             "(first: 'mtbench_math_2')"]}
    assert check_dataset("wu2024", final) == expected
    np.savez(tmp_path / "m_levels.npz", lima_author_1=np.zeros((2, 1), np.uint8))
    _jsonl(tmp_path / "m_tokens.jsonl", [{"id": "lima_author_1", "input_tokens": ["a", "b"],
                                          "output_tokens": ["c"], "shape": [2, 1]}])
    directory = check_dataset("wu2024", tmp_path)
    assert directory == {**expected, "path": str(tmp_path), "levels": {"m": 1}}
    (tmp_path / "m_tokens.jsonl").unlink()
    with pytest.raises(DataError, match=r"m_levels\.npz: no m_tokens\.jsonl beside the levels"):
        check_dataset("wu2024", tmp_path)
    final.unlink()
    with pytest.raises(DataError, match=r": no FinalDataset\.tsv in the Wu et al\. directory$"):
        check_dataset("wu2024", tmp_path)


def test_wu2024_release(shared_data):
    summary = check_dataset("wu2024", shared_data / "wu2024")
    assert (summary["prompts"], summary["annotations"], summary["vocabulary_words"]) == \
        (632, 1264, 26497)
    assert summary["levels"] == {"llama_7b": 632, "vicuna_7b": 632}
    assert summary["sources"] == {"self-instruct": 252, "lima": 300, "mt-bench": 80}


def test_bad_input_raises_the_loaders_error(tmp_path):
    bad = _write(tmp_path / "pairs.csv", "a,b,label\nx,y,maybe\n")
    with pytest.raises(DataError) as info:
        check_dataset("pairs", bad)
    assert str(info.value) == (f"{bad}:2: field 'label': must be 0 or 1 (or true/false), "
                               "got 'maybe'")
    with pytest.raises(DataError, match="no such ParaRel directory"):
        check_dataset("pararel", tmp_path / "missing")


@pytest.mark.parametrize("kind", ["parquet", "", None, "pairs.csv"])
def test_unknown_kind_names_the_kinds(tmp_path, kind):
    with pytest.raises(TunescopeError) as info:
        check_dataset(kind, tmp_path)
    assert str(info.value) == (f"unknown dataset kind {kind!r}; kinds: pararel, pairs, task, "
                               "instructions, wu2024, vocabulary, sft")
    assert KINDS == ("pararel", "pairs", "task", "instructions", "wu2024", "vocabulary", "sft")


def _cli_has_check() -> bool:
    import typer

    from tunescope import cli
    group = typer.main.get_command(cli.app)
    datasets = group.commands.get("datasets")
    return datasets is not None and "check" in getattr(datasets, "commands", {})


@pytest.mark.skipif(not _cli_has_check(), reason="`tunescope datasets check` is not wired yet")
def test_cli_datasets_check(tmp_path):
    bad = _write(tmp_path / "pairs.csv", "a,b,label\nx,y,maybe\n")
    done = subprocess.run([sys.executable, "-m", "tunescope.cli", "datasets", "check", "pairs",
                           str(bad)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{bad}:2: field 'label'" in lines[0]
    good = _write(tmp_path / "good.csv", "a,b,label\nx,y,1\n")
    done = subprocess.run([sys.executable, "-m", "tunescope.cli", "datasets", "check", "pairs",
                           str(good)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "pairs" in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.csv", "pairs.csv"]
