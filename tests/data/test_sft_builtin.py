"""The built-in instruction-tuning set (``builtin/sft.jsonl``): its size, balance and variety,
correct arithmetic, a generator that reproduces the file byte for byte, and no overlap with the
data tunescope's analyses measure on (ParaRel facts, the built-in pairs, task and prompts)."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from tunescope.data.sft import SFTExample, builtin_sft, builtin_sft_path

ROOT = Path(__file__).resolve().parents[2]
BUILTIN = ROOT / "src" / "tunescope" / "data" / "builtin"
SFT_FILE = BUILTIN / "sft.jsonl"
SHARED_PARAREL = ROOT.parent / "shared" / "data" / "pararel"
FIELDS = ("id", "category", "split", "instruction", "input", "response")


def _records() -> list[dict]:
    return [json.loads(line) for line in SFT_FILE.read_text(encoding="utf-8").splitlines()]


RECORDS = _records()


def _words(text: str) -> list[str]:
    """Lower-cased words with punctuation stripped (``don't`` -> ``don``, ``t``)."""
    return re.findall(r"\w+", text.lower())


def _example_text(record: dict) -> str:
    return "\n".join((record["instruction"], record["input"], record["response"]))


# --- shape, size and balance -----------------------------------------------------------------

def test_records_have_the_documented_fields_and_unique_ids():
    assert all(tuple(r) == FIELDS for r in RECORDS)
    ids = [r["id"] for r in RECORDS]
    assert len(set(ids)) == len(ids)
    for r in RECORDS:
        assert re.fullmatch(rf"{r['category']}-\d{{4}}", r["id"]), r["id"]
        assert r["split"] in ("train", "heldout")
        assert r["instruction"].strip() == r["instruction"] and r["instruction"]
        assert r["response"].strip() == r["response"] and r["response"]
        assert r["input"].strip() == r["input"]


def test_size_splits_and_categories():
    splits = Counter(r["split"] for r in RECORDS)
    assert splits["train"] >= 1000 and splits["heldout"] == 100
    categories = Counter(r["category"] for r in RECORDS)
    assert len(categories) >= 7 and min(categories.values()) >= 80, categories
    heldout = Counter(r["category"] for r in RECORDS if r["split"] == "heldout")
    assert set(heldout) == set(categories) and min(heldout.values()) >= 10, heldout
    assert SFT_FILE.stat().st_size < 600_000


def test_prompts_are_distinct_and_varied():
    prompts = [(r["instruction"], r["input"]) for r in RECORDS]
    assert len(set(prompts)) == len(prompts)
    instructions = {r["instruction"] for r in RECORDS}
    assert len(instructions) >= 600
    # templates: instructions with numbers, quoted words and capitalised names masked
    skeletons = {re.sub(r"\b[A-Z][a-z]+\b", "N", re.sub(r'"[^"]*"', "Q", re.sub(r"\d+", "#", i)))
                 for i in instructions}
    assert len(skeletons) >= 150
    lengths = [len(r["response"].split()) for r in RECORDS]
    assert min(lengths) == 1 and max(lengths) >= 60


def test_loader_reads_the_builtin_set():
    examples = builtin_sft()
    assert len(examples) == len(RECORDS)
    assert builtin_sft_path().read_bytes() == SFT_FILE.read_bytes()
    assert all(isinstance(e, SFTExample) for e in examples)
    first = RECORDS[0]
    assert examples[0].id == first["id"] and examples[0].response == first["response"]
    assert examples[0].instruction.startswith(first["instruction"])
    assert len(builtin_sft("heldout")) == 100
    assert len(builtin_sft("train")) + 100 == len(RECORDS)


# --- correctness -----------------------------------------------------------------------------

_OPERATIONS = (
    (r"(\d+)\s*\+\s*(\d+)", lambda a, b: a + b),
    (r"\badd (\d+) and (\d+)", lambda a, b: a + b),
    (r"\badd (\d+) to (\d+)", lambda a, b: a + b),
    (r"\bsum of (\d+) and (\d+)", lambda a, b: a + b),
    (r"(\d+) plus (\d+)", lambda a, b: a + b),
    (r"(\d+)\s*-\s*(\d+)", lambda a, b: a - b),
    (r"(\d+) minus (\d+)", lambda a, b: a - b),
    (r"\bsubtract (\d+) from (\d+)", lambda a, b: b - a),
    (r"\btake (\d+) away from (\d+)", lambda a, b: b - a),
    (r"\bdifference between (\d+) and (\d+)", lambda a, b: abs(a - b)),
    (r"(\d+)\s*[×x*]\s*(\d+)", lambda a, b: a * b),
    (r"(\d+) times (\d+)", lambda a, b: a * b),
    (r"\bmultiply (\d+) by (\d+)", lambda a, b: a * b),
    (r"\bproduct of (\d+) and (\d+)", lambda a, b: a * b),
)


def test_arithmetic_answers_are_correct():
    """Every arithmetic instruction with two numbers and one operation: the last number of the
    response is the result, recomputed here from the instruction text."""
    checked = 0
    for r in RECORDS:
        if r["category"] != "arithmetic" or r["input"]:
            continue
        if len(re.findall(r"\d+(?:\.\d+)?", r["instruction"])) != 2:
            continue
        text = r["instruction"].lower()
        matches = [(pattern, op) for pattern, op in _OPERATIONS if re.search(pattern, text)]
        if not matches:
            continue
        pattern, op = matches[0]
        a, b = map(int, re.search(pattern, text).groups())
        last = re.findall(r"\d[\d,]*", r["response"])[-1].replace(",", "")
        assert int(last) == op(a, b), (r["id"], r["instruction"], r["response"])
        checked += 1
    assert checked >= 60


# --- reproducibility -------------------------------------------------------------------------

def test_generator_reproduces_the_file(tmp_path):
    out = tmp_path / "sft.jsonl"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_sft_set.py"), str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == SFT_FILE.read_bytes()


# --- no overlap with ParaRel -----------------------------------------------------------------

def _facts(root: Path) -> list[tuple[str, str, str]]:
    """(relation, subject, object) of every fact of a ParaRel ``tuples/`` directory."""
    facts = []
    for path in sorted((root / "tuples").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                facts.append((path.stem, row["sub_label"], row["obj_label"]))
    return facts


def _phrase_hits(phrases: set[tuple[str, ...]]) -> dict[tuple[str, ...], set[int]]:
    """For each phrase (a tuple of words), the indices of the examples containing it as whole
    words."""
    lengths = {len(p) for p in phrases if p}
    hits: dict[tuple[str, ...], set[int]] = defaultdict(set)
    for k, record in enumerate(RECORDS):
        words = _words(_example_text(record))
        for n in lengths:
            for i in range(len(words) - n + 1):
                gram = tuple(words[i:i + n])
                if gram in phrases:
                    hits[gram].add(k)
    return hits


def _fact_overlaps(facts) -> list[str]:
    phrases = {tuple(_words(s)) for _, s, _ in facts} | {tuple(_words(o)) for _, _, o in facts}
    hits = _phrase_hits(phrases)
    found = []
    for relation, subject, obj in facts:
        both = hits.get(tuple(_words(subject)), set()) & hits.get(tuple(_words(obj)), set())
        found += [f"{RECORDS[k]['id']}: {relation} ({subject!r}, {obj!r})" for k in sorted(both)]
    return found


def test_no_builtin_pararel_subject_or_fact():
    facts = _facts(BUILTIN / "pararel")
    assert len(facts) > 400
    subjects = {tuple(_words(s)) for _, s, _ in facts}
    hits = _phrase_hits(subjects)
    named = sorted(f"{RECORDS[k]['id']}: {' '.join(s)!r}" for s, ks in hits.items() for k in ks)
    assert not named, named[:20]
    assert not _fact_overlaps(facts)


def test_no_fact_of_the_full_pararel():
    if not (SHARED_PARAREL / "tuples").is_dir():
        pytest.skip(f"the ParaRel data is not at {SHARED_PARAREL} (tuples/*.jsonl)")
    facts = _facts(SHARED_PARAREL)
    assert len(facts) > 20000
    overlaps = _fact_overlaps(facts)
    assert not overlaps, overlaps[:20]


# --- no overlap with the other built-in data -------------------------------------------------

def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _factual_prompts() -> tuple[str, ...]:
    """``FACTUAL_PROMPTS`` (the built-in prompts of next_token_predictions), read from its source (no torch)."""
    source = (ROOT / "src" / "tunescope" / "data" / "prompts.py").read_text("utf-8")
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "FACTUAL_PROMPTS"
                                                for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("FACTUAL_PROMPTS not found")


def _reference_texts() -> list[str]:
    texts = list(_factual_prompts())
    skip = {"id", "category", "label", "source"}
    for name in ("pairs.jsonl", "sentiment.jsonl", "instructions.jsonl"):
        for line in (BUILTIN / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                texts += [s for key, value in row.items() if key not in skip
                          for s in _strings(value)]
    return texts


def _grams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def test_no_eight_word_sequence_shared_with_the_analyses_data():
    """No 8-word sequence (lower-cased, punctuation stripped) of an example occurs in the
    built-in pairs, task texts and perturbations, instruction prompts or factual prompts; and
    no such text of 5 to 7 words occurs whole in an example."""
    references = _reference_texts()
    assert len(references) > 1500
    eight: set[tuple[str, ...]] = set()
    short: dict[int, set[tuple[str, ...]]] = defaultdict(set)
    for text in references:
        words = _words(text)
        if len(words) >= 8:
            eight |= _grams(words, 8)
        elif len(words) >= 5:
            short[len(words)].add(tuple(words))
    found = []
    for record in RECORDS:
        words = _words(_example_text(record))
        shared = _grams(words, 8) & eight
        for n, phrases in short.items():
            shared |= _grams(words, n) & phrases
        found += [f"{record['id']}: {' '.join(g)!r}" for g in sorted(shared)]
    assert not found, found[:20]
