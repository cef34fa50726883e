"""Bounded study parsing: YAML alias bombs and shared Python values are refused before they are
built (fast, in little memory), and every error echoes a user's value in a few characters."""

import resource
import subprocess
import sys
import time
import tracemalloc

import pytest

from tunescope.errors import TunescopeError
from tunescope.study import Study, from_yaml, resolve
from tunescope.study.spec import read_yaml, set_value
from tunescope.study.yaml_source import (
    MAX_VALUES,
    MESSAGE_LIMIT,
    QUOTE_LIMIT,
    clipped,
    quoted,
)

LEVELS = "abcdefghij"


def bomb_lines() -> list[str]:
    """Ten levels of nine aliases: 9^10 (3.5 billion) strings in 341 bytes."""
    lines = [f"a: &a [{','.join(['x'] * 9)}]"]
    for prev, cur in zip(LEVELS, LEVELS[1:]):
        lines.append(f"{cur}: &{cur} [{','.join(['*' + prev] * 9)}]")
    return lines


BOMB = "\n".join(bomb_lines()) + "\n"
FLOW_BOMB = "{" + ", ".join(bomb_lines()) + "}"
"""The same bomb as one flow mapping, for ``--set PATH=VALUE``."""


def python_bomb() -> list:
    """A list that holds 9^10 strings through shared sublists (a few hundred objects)."""
    value = ["x"] * 9
    for _ in range(9):
        value = [value] * 9
    return value


def bounded(fn):
    """Run ``fn`` (which must raise a TunescopeError); return (message, seconds, peak MiB)."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(TunescopeError) as e:
            fn()
    finally:
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] / 2 ** 20
        tracemalloc.stop()
    return str(e.value), seconds, peak


def check_refused(fn, *expected):
    message, seconds, peak = bounded(fn)
    assert "\n" not in message and len(message) < 300, message
    assert seconds < 2 and peak < 50, (seconds, peak)
    for part in expected:
        assert part in message, message
    return message


def test_a_bomb_file_is_refused_at_once(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    assert len(BOMB) < 1024
    too_big = f"expands to more than {MAX_VALUES:,} values"
    check_refused(lambda: read_yaml(path), f"{path}:", too_big)
    check_refused(lambda: Study.from_yaml(path), f"{path}:", too_big)
    check_refused(lambda: from_yaml(BOMB, "study.yaml"), "study.yaml:", too_big)
    hidden = f"base: gemma-3-270m\nanalyses:\n  recall: {FLOW_BOMB}\n"
    check_refused(lambda: from_yaml(hidden, "study.yaml"), "study.yaml:3:", too_big)


def test_a_bomb_given_with_set_or_as_python_values_is_refused(tmp_path):
    too_big = f"expands to more than {MAX_VALUES:,} values"
    check_refused(lambda: set_value({}, f"analyses.recall={FLOW_BOMB}"),
                  "--set analyses.recall: the value", too_big)
    check_refused(lambda: Study.from_dict({"base": "gemma-3-270m"},
                                          [f"datasets.pairs={FLOW_BOMB}"]), too_big)
    check_refused(lambda: resolve({"base": "gemma-3-270m", "analyses": python_bomb()}),
                  "study analyses[0]", too_big)
    check_refused(lambda: Study(base="gemma-3-270m", datasets={"pairs": python_bomb()}), too_big)


def test_a_value_that_holds_itself_is_refused():
    check_refused(lambda: from_yaml("base: &a [*a]\n", "study.yaml"), "study.yaml:1:",
                  "contains itself")
    raw = {"base": "gemma-3-270m"}
    raw["tuned"] = [raw]
    check_refused(lambda: resolve(raw), "contains itself")


def test_a_merge_key_bomb_is_refused_before_it_is_merged():
    lines = ["a: &a {" + ", ".join(f"k{i}: {i}" for i in range(9)) + "}"]
    for prev, cur in zip(LEVELS, LEVELS[1:]):
        lines.append(f"{cur}: &{cur} [{','.join(['*' + prev] * 9)}]")
    lines.append(f"z: {{<<: [{', '.join(['*a'] * 9)}], y: *j}}")
    check_refused(lambda: from_yaml("\n".join(lines), "study.yaml"), "expands to more than")


def test_studies_with_a_few_anchors_and_aliases_still_load():
    text = """\
base: &base gemma-3-270m
tuned: [smollm2-135m-instruct]
analyses:
  prediction_consistency: &small {batch_size: 4, max_new_tokens: 8}
  recall: {}
datasets:
  pararel: &facts {relations: &ids [P17, P36], max_facts: 3}
seed: 0
"""
    spec = from_yaml(text, "study.yaml")
    assert spec.base.spec == "gemma-3-270m"
    assert spec.analyses["prediction_consistency"].batch_size == 4
    assert spec.datasets["pararel"]["relations"] == ["P17", "P36"]
    merged = text.replace("  recall: {}", "  recall: {}\n  downstream_consistency: {<<: *small}")
    with pytest.raises(TunescopeError, match="has no parameter 'max_new_tokens'"):
        from_yaml(merged, "study.yaml")   # merged keys are checked like written ones
    assert set_value({}, "seed=&s 3") == {"seed": 3}


LONG = "x" * 100_000


@pytest.mark.parametrize("text", [
    f"base: gemma-3-270m\nseed: {LONG}\n",
    f"base: gemma-3-270m\ndtype: {LONG}\n",
    f"base: gemma-3-270m\nexecutor: {LONG}\n",
    f"base: {LONG}\n",
    f"base: ./{LONG}\n",
    f"base: {{spec: gemma-3-270m, key: '{LONG}'}}\n",      # a valid key, but too long
    f"base: gemma-3-270m\ntuned: [{LONG}.gguf]\n",
    f"base: gemma-3-270m\nanalyses: [{LONG}]\n",
    f"base: gemma-3-270m\nanalyses: {{recall: {{{LONG}: 1}}}}\n",
    f"base: gemma-3-270m\nanalyses: {{prediction_consistency: {{mode: [{LONG}]}}}}\n",
    f"base: gemma-3-270m\nanalyses: {{prediction_consistency: {{batch_size: {LONG}}}}}\n",
    f"base: gemma-3-270m\n{LONG}: 1\n",
    f"base: gemma-3-270m\nanalyses: [recall]\ndatasets: {{pararel: {{source: {LONG}}}}}\n",
    f"base: gemma-3-270m\nanalyses: [recall]\ndatasets: {{pararel: {{{LONG}: 1}}}}\n",
    f"base: gemma-3-270m\nanalyses: [recall]\nout: [{LONG}]\n",
    f"base: gemma-3-270m\n? [{LONG}]\n: 1\n",
    f"base: gemma-3-270m\nseed: *{LONG}\n",
])
def test_a_long_value_gives_a_short_error_line(text):
    with pytest.raises(TunescopeError) as e:
        from_yaml(text, "study.yaml")
    message = str(e.value)
    assert "\n" not in message and len(message) < MESSAGE_LIMIT, message[:600]
    with pytest.raises(TunescopeError) as e:
        from_yaml(text.replace(LONG, "y!"), "study.yaml")
    short = str(e.value)
    # the value adds at most two quotations (field and message) to the same error's line
    assert len(message) <= len(short) + 2 * QUOTE_LIMIT, (message, short)


def test_every_error_line_is_bounded_even_from_unbounded_checks():
    # check_entry (study.datasets) echoes the whole value; the study error still stays short
    text = f"base: gemma-3-270m\nanalyses: [recall]\ndatasets: {{pararel: {{max_facts: {LONG}}}}}\n"
    with pytest.raises(TunescopeError) as e:
        from_yaml(text, "study.yaml")
    message = str(e.value)
    assert "\n" not in message and len(message) < MESSAGE_LIMIT + 100, message[:700]
    with pytest.raises(TunescopeError) as e:
        set_value({}, LONG)
    assert len(str(e.value)) < 300


def test_quoted_and_clipped_are_short_whatever_the_value():
    assert quoted("nope") == "'nope'" and quoted(3) == "3"
    start = time.perf_counter()
    for value in (python_bomb(), LONG, {LONG: [LONG] * 1000}, "a\nb" * 10_000, 10 ** 4000):
        shown = quoted(value)
        assert len(shown) <= QUOTE_LIMIT and "\n" not in shown, shown
    assert time.perf_counter() - start < 1
    text = clipped("start " + "y" * 10_000 + " end hint")
    assert len(text) <= MESSAGE_LIMIT and text.startswith("start ") and text.endswith("end hint")


# --- through the command line ------------------------------------------------------------------

def _limit_memory():
    """Run the child with at most 2 GiB of address space (an unbounded parse dies at once)."""
    resource.setrlimit(resource.RLIMIT_AS, (2 * 2 ** 30, 2 * 2 ** 30))


def tunescope(*args):
    return subprocess.run([sys.executable, "-m", "tunescope.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300, preexec_fn=_limit_memory)


def one_error_line(done, message):
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tunescope: error: "), done.stderr[-2000:]
    assert message in lines[0] and len(lines[0]) < 300, lines[0]


def test_the_cli_refuses_a_bomb_in_one_line(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    too_big = f"expands to more than {MAX_VALUES:,} values"
    one_error_line(tunescope("run", path), f"{path}:6: field 'f': {too_big}")
    one_error_line(tunescope("run", path, "--dry-run"), too_big)
    one_error_line(tunescope("run", "--dry-run", "--out", tmp_path / "x", "--set",
                             f"analyses.recall={FLOW_BOMB}"),
                   f"--set analyses.recall: the value {too_big}")
    one_error_line(tunescope("run", "--dry-run", "--out", tmp_path / "x", "--set",
                             f"seed={LONG}"), "field 'seed': must be an integer")
    assert not (tmp_path / "x").exists()
