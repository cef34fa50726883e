"""Paraphrase pairs, downstream tasks and perturbations: built-in sets, loaders, hub errors."""

from __future__ import annotations

import json
import sys
import types
from collections import Counter

import pytest

from tunescope.data import pararel
from tunescope.data.pairs import (
    builtin_pairs,
    hf_pairs,
    load_pairs,
    pararel_pairs,
    tapaco_pairs,
)
from tunescope.data.perturb import (
    NEGATIONS,
    SYNONYM_GROUPS,
    SYNONYMS,
    recase,
    synonym_swap,
    typo,
)
from tunescope.data.tasks import builtin_task, hf_task, load_task
from tunescope.data.types import Fact, ParaphrasePair, Relation, Task, Template
from tunescope.errors import DataError, TunescopeError


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def _jsonl(path, rows):
    return _write(path, "".join(json.dumps(r) + "\n" for r in rows))


# --- ParaRel-derived pairs ---------------------------------------------------------------------

REAL_PARAREL = "/work/shared/data/pararel"


def _readings(relation, sentence):
    """Every (template index, fact) of ``relation`` that fills to ``sentence``."""
    return {(i, f) for i, t in enumerate(relation.templates) for f in relation.facts
            if t.fill(f.subject, f.object) == sentence}


def _is_matched(relation, para, non) -> bool:
    """``para`` = f in templates i != j and ``non`` = f in i, g in j, with g another subject
    and, where the relation has a fact with another subject and object, another object."""
    for i, f in _readings(relation, para.a):
        other_object = any(h.subject != f.subject and h.object != f.object
                           for h in relation.facts)
        for j, f2 in _readings(relation, para.b):
            if f2 != f or j == i:
                continue
            for j2, g in _readings(relation, non.b):
                if (j2 == j and g.subject != f.subject
                        and (g.object != f.object or not other_object)):
                    return True
    return False


def _check_matched(relations, pairs):
    """Pairs come in units: a paraphrase then its matched non-paraphrase (same first
    sentence), all from one relation."""
    assert len(pairs) % 2 == 0
    for para, non in zip(pairs[::2], pairs[1::2]):
        assert (para.label, non.label, para.source, non.source) == (1, 0, "pararel", "pararel")
        assert para.a == non.a and para.b != non.b and para.a != para.b
        assert any(_is_matched(r, para, non) for r in relations), (para, non)


def test_pararel_pairs_hand_built_relation():
    templates = tuple(Template("P1", p) for p in ("[X] lives in [Y].", "[X] resides in [Y].",
                                                   "The home of [X] is [Y]."))
    facts = (Fact("P1", "Ann", "Oslo"), Fact("P1", "Bob", "Rome"), Fact("P1", "Cid", "Oslo"))
    relation = Relation("P1", templates, facts)
    pairs = pararel_pairs([relation], seed=4)
    assert len(pairs) == 2 * 3 * 3                      # 3 facts x 3 template pairs x 2 labels
    assert pairs[0] == ParaphrasePair("Ann lives in Oslo.", "Ann resides in Oslo.", 1, "pararel")
    assert pairs[1] == ParaphrasePair("Ann lives in Oslo.", "Bob resides in Rome.", 0, "pararel")
    # Ann and Cid share Oslo: their non-paraphrase partner must be Bob (another object exists)
    for para, non in zip(pairs[::2], pairs[1::2]):
        if "Bob" not in para.a:
            assert "Bob" in non.b and "Rome" in non.b
    _check_matched([relation], pairs)
    one = Relation("P2", templates[:1], facts)
    same = Relation("P3", templates, (facts[0], Fact("P3", "Ann", "Bergen")))
    assert pararel_pairs([one, same]) == []             # one template; one subject


def test_pararel_pairs_builtin_balanced_matched_deterministic():
    relations = pararel()
    pairs = pararel_pairs(relations, max_pairs=240, seed=0)
    assert len(pairs) == 240
    assert Counter(p.label for p in pairs) == {1: 120, 0: 120}
    assert {p.source for p in pairs} == {"pararel"}
    _check_matched(relations, pairs)
    assert pararel_pairs(relations, max_pairs=240, seed=0) == pairs
    assert pararel_pairs(relations, max_pairs=240, seed=1) != pairs
    # taken evenly: 120 units over 12 relations = 10 each
    per_relation = Counter(next(r.id for r in relations if _readings(r, p.b))
                           for p in pairs[::2])
    assert set(per_relation.values()) == {10} and len(per_relation) == len(relations)
    assert len(pararel_pairs(relations, max_pairs=7)) == 6      # rounded down to even
    everything = pararel_pairs(relations)
    n_units = sum(len(r.facts) * len(r.templates) * (len(r.templates) - 1) // 2
                  for r in relations)
    assert len(everything) == 2 * n_units and len(set(everything)) == len(everything)
    with pytest.raises(TunescopeError, match="max_pairs must be at least 2"):
        pararel_pairs(relations, max_pairs=1)


def test_pararel_pairs_uneven_relations_share_the_rest():
    templates = tuple(Template("P1", p) for p in ("[X] lives in [Y].", "[X] resides in [Y]."))
    small = Relation("P1", templates, (Fact("P1", "Ann", "Oslo"), Fact("P1", "Bob", "Rome")))
    big = Relation("P2", tuple(Template("P2", p.pattern) for p in templates),
                   tuple(Fact("P2", s, o) for s, o in [("Cid", "Oslo"), ("Dan", "Rome"),
                                                        ("Eve", "Nice"), ("Fay", "Bonn"),
                                                        ("Gus", "Kiel")]))
    pairs = pararel_pairs([small, big], max_pairs=12)   # 6 units: small has 2, big gets 4
    firsts = [p.a.split(" ")[0] for p in pairs[::2]]
    assert len(pairs) == 12 and sum(n in ("Ann", "Bob") for n in firsts) == 2


@pytest.mark.skipif(not __import__("os").path.isdir(REAL_PARAREL), reason="no ParaRel copy")
def test_pararel_pairs_real_p36():
    relations = pararel(["P36"], path=REAL_PARAREL)
    pairs = pararel_pairs(relations, max_pairs=400, seed=0)
    assert len(pairs) == 400 and Counter(p.label for p in pairs) == {1: 200, 0: 200}
    _check_matched(relations, pairs)
    assert pairs == pararel_pairs(relations, max_pairs=400, seed=0)
    assert len(set(pairs)) == len(pairs)


# --- built-in pairs ---------------------------------------------------------------------------

def test_builtin_pairs_size_balance_and_sources():
    pairs = builtin_pairs()
    assert len(pairs) >= 300
    labels = Counter(p.label for p in pairs)
    assert abs(labels[0] - labels[1]) <= 1
    sources = Counter(p.source for p in pairs)
    assert sources["written"] >= 100
    assert set(sources) == {"written", "factual"}
    assert all(isinstance(p, ParaphrasePair) and p.a.strip() and p.b.strip() for p in pairs)


def test_builtin_pairs_have_no_duplicates_or_trivial_pairs():
    pairs = builtin_pairs()
    keys = [frozenset((p.a, p.b)) for p in pairs]
    assert len(set(keys)) == len(keys)
    assert all(p.a != p.b for p in pairs)


def test_builtin_pairs_are_a_fresh_list():
    first = builtin_pairs()
    first.clear()
    assert len(builtin_pairs()) >= 300


def test_builtin_non_paraphrases_are_hard():
    """Non-paraphrases share many words: word overlap is no shortcut to the label."""
    def overlap(p):
        a, b = (set(s.lower().strip(".").split()) for s in (p.a, p.b))
        return len(a & b) / len(a | b)

    negatives = [overlap(p) for p in builtin_pairs() if p.label == 0]
    assert sum(negatives) / len(negatives) > 0.4


# --- built-in task ----------------------------------------------------------------------------

def test_builtin_task_fields():
    task = builtin_task()
    assert isinstance(task, Task)
    assert task.name == "sentiment"
    assert task.labels == ("negative", "positive")
    assert dict(task.label_words) == {"negative": " negative", "positive": " positive"}
    assert "{text}" in task.prompt_template


def test_builtin_task_size_balance_and_perturbations():
    task = builtin_task()
    assert len(task.examples) >= 200
    counts = Counter(ex.label for ex in task.examples)
    assert counts["positive"] >= 90 and counts["negative"] >= 90
    assert len({ex.id for ex in task.examples}) == len(task.examples)
    assert len({ex.text for ex in task.examples}) == len(task.examples)
    for ex in task.examples:
        kinds = dict(ex.perturbations)
        assert len(kinds) >= 3
        assert {"paraphrase", "typo", "casing"} <= set(kinds) <= {"paraphrase", "typo",
                                                                  "casing", "synonym"}
        for kind, text in ex.perturbations:
            assert text.strip() and text != ex.text, (ex.id, kind)


def test_builtin_synonym_swaps_are_stored_for_nearly_every_example_and_reproducible():
    examples = builtin_task().examples
    with_synonym = [ex for ex in examples if "synonym" in dict(ex.perturbations)]
    assert len(with_synonym) >= 0.8 * len(examples)
    for number, ex in enumerate(examples, start=1):  # seed = example number, as the others
        swapped = synonym_swap(ex.text, number)
        assert dict(ex.perturbations).get("synonym", ex.text) == swapped
        assert [k for k, _ in ex.perturbations][:3] == ["paraphrase", "typo", "casing"]


def test_builtin_typos_keep_negations():
    for ex in builtin_task().examples:
        typoed = dict(ex.perturbations)["typo"]
        for word in NEGATIONS:
            assert ex.text.lower().split().count(word) == typoed.lower().split().count(word)


# --- perturbations ----------------------------------------------------------------------------

SENTENCES = ["The food was not good, and the service was slow.",
             "I never want to see this movie again!", "Great value for the price."]


@pytest.mark.parametrize("text", SENTENCES)
def test_typo_deterministic_and_different(text):
    out = typo(text, 7)
    assert out == typo(text, 7)
    assert out != text
    assert len(out.split()) == len(text.split())
    assert {typo(text, s) for s in range(10)} != {out}  # the seed matters


@pytest.mark.parametrize("text", SENTENCES)
def test_recase_deterministic_and_different(text):
    out = recase(text, 3)
    assert out == recase(text, 3)
    assert out != text
    assert out.lower().rstrip(".!?").replace(",", "") == text.lower().rstrip(".!?").replace(",", "")


def test_typo_leaves_negation_words_alone():
    text = "Not once did nobody say nothing, never."
    for seed in range(20):
        out = typo(text, seed)
        assert out != text
        for word in ("Not", "nobody", "nothing", "never"):
            assert word in out


def test_typo_avoids_given_vocabulary():
    text = "The dessert came cold."
    seen = {typo(text, s, avoid={"desert", "cake", "clod", "come"}) for s in range(30)}
    for out in seen:
        assert not {"desert", "cake", "clod"} & set(out.lower().strip(".").split())


@pytest.mark.parametrize("text", ["The staff was friendly, but the film was not good.",
                                  "I never want to see this movie again!", "A dull film.",
                                  "An excellent, really funny movie!"])
def test_synonym_swap_deterministic_and_different(text):
    out = synonym_swap(text, 5)
    assert out == synonym_swap(text, 5) and out != text
    assert len(out.split()) >= len(text.split())
    changed = [(a, b) for a, b in zip(text.split(), out.split()) if a != b]
    for a, b in changed:  # a word of the table for one of its synonyms (or the article before)
        a, b = a.strip(".,!?").lower(), b.strip(".,!?").lower()
        assert a in ("a", "an") or b in SYNONYMS.get(a, ()) or " " in SYNONYMS.get(a, ("",))[0]


def test_synonym_swap_casing_articles_and_compounds():
    assert synonym_swap("A dull film.", 0) in {"A boring film.", "A dull movie.", "A boring movie."}
    assert synonym_swap("An excellent FILM", 1).split()[-1] in {"FILM", "MOVIE"}
    for seed in range(10):
        out = synonym_swap("A disappointing, heavy-handed ending", seed)
        assert "heavy-handed" in out
        if out.startswith("An "):
            assert out.split()[1][0] in "aeiouAEIOU"
    assert synonym_swap("Nothing here matches.", 3) == "Nothing here matches."


def test_synonym_swap_leaves_negations_alone():
    text = "The film was not bad, never boring and nothing was awful; I don't regret it."
    for seed in range(20):
        out = synonym_swap(text, seed)
        assert out != text
        for word in ("not", "never", "nothing", "don't"):
            assert out.split().count(word) == text.split().count(word)


def test_synonym_table_keeps_polarity_and_never_holds_a_negation():
    words = {g: set(d) | {w for subs in d.values() for w in subs}
             for g, d in SYNONYM_GROUPS.items()}
    assert not words["positive"] & words["negative"]
    assert not words["neutral"] & (words["positive"] | words["negative"])
    for group in words.values():
        for entry in group:
            assert not set(entry.split()) & NEGATIONS and "n't" not in entry
    assert all(k == k.lower() and subs and k not in subs for k, subs in SYNONYMS.items())


@pytest.mark.parametrize("text", ["", "42", "ok", "?"])
def test_perturbations_of_odd_texts_still_differ(text):
    assert typo(text, 1) != text
    assert recase(text, 1) != text


# --- load_pairs -------------------------------------------------------------------------------

def test_load_pairs_csv(tmp_path):
    path = _write(tmp_path / "p.csv", "a,b,label\n"
                  '"Hi, there.",Hello there.,1\nA cat.,A dog.,0\nX is Y.,Y is X.,true\n')
    pairs = load_pairs(path)
    assert pairs == [ParaphrasePair("Hi, there.", "Hello there.", 1),
                     ParaphrasePair("A cat.", "A dog.", 0), ParaphrasePair("X is Y.", "Y is X.", 1)]


def test_load_pairs_csv_sentence_columns_and_tsv(tmp_path):
    path = _write(tmp_path / "p.csv", "id,sentence1,sentence2,label,source\n"
                  "1,One.,Uno.,1,mine\n\n2,Two.,Three.,0,\n")
    assert load_pairs(path) == [ParaphrasePair("One.", "Uno.", 1, "mine"),
                                ParaphrasePair("Two.", "Three.", 0)]
    tsv = _write(tmp_path / "p.tsv", "a\tb\tlabel\nOne, two.\tOne and two.\tFalse\n")
    assert load_pairs(tsv) == [ParaphrasePair("One, two.", "One and two.", 0)]


def test_load_pairs_jsonl(tmp_path):
    path = _jsonl(tmp_path / "p.jsonl", [{"a": "A.", "b": "B.", "label": 1, "source": "s"},
                                          {"a": "C.", "b": "D.", "label": "0"},
                                          {"sentence1": "E.", "sentence2": "F.", "label": False}])
    assert load_pairs(path) == [ParaphrasePair("A.", "B.", 1, "s"), ParaphrasePair("C.", "D.", 0),
                                ParaphrasePair("E.", "F.", 0)]


def _assert_data_error(exc, name, line=None, field=None):
    msg = str(exc.value)
    assert name in msg
    if line is not None:
        assert f":{line}:" in msg and exc.value.line == line
    if field is not None:
        assert f"'{field}'" in msg and exc.value.field == field
    assert "\n" not in msg


@pytest.mark.parametrize("body, line, field", [
    ("a,b,label\nx.,y.,1\n,y.,0\n", 3, "a"),
    ("a,b,label\nx.,y.,1\nx.,  ,0\n", 3, "b"),
    ("a,b,label\nx.,y.,2\n", 2, "label"),
    ("a,b,label\nx.,y.,yes\n", 2, "label"),
    ("a,b,label\nx.,y.,1\nx.,y.\n", 3, "label"),
    ("a,c,label\nx.,y.,1\n", 1, "a"),
    ("a,b\nx.,y.\n", 1, "label"),
])
def test_load_pairs_csv_errors(tmp_path, body, line, field):
    path = _write(tmp_path / "bad_pairs.csv", body)
    with pytest.raises(DataError) as exc:
        load_pairs(path)
    _assert_data_error(exc, "bad_pairs.csv", line, field)


@pytest.mark.parametrize("body, line, field", [
    ('{"a": "x", "b": "y", "label": 1}\n{"b": "y", "label": 0}\n', 2, "a"),
    ('{"a": "x", "b": 3, "label": 1}\n', 1, "b"),
    ('{"a": "x", "b": "y"}\n', 1, "label"),
    ('\n{"a": "x", "b": "y", "label": 5}\n', 2, "label"),
    ('{"a": "x", "b": "y", "label": 1, "source": 4}\n', 1, "source"),
    ('{"a": "x", "b": "y", "label": 1}\nnot json\n', 2, None),
    ('[1, 2]\n', 1, None),
])
def test_load_pairs_jsonl_errors(tmp_path, body, line, field):
    path = _write(tmp_path / "bad_pairs.jsonl", body)
    with pytest.raises(DataError) as exc:
        load_pairs(path)
    _assert_data_error(exc, "bad_pairs.jsonl", line, field)


@pytest.mark.parametrize("name, body", [("empty.csv", ""), ("header.csv", "a,b,label\n"),
                                        ("empty.jsonl", "\n\n"), ("pairs.txt", "a,b,label\n")])
def test_load_pairs_empty_or_unknown_format(tmp_path, name, body):
    with pytest.raises(DataError) as exc:
        load_pairs(_write(tmp_path / name, body))
    _assert_data_error(exc, name)


def test_load_pairs_missing_file(tmp_path):
    with pytest.raises(DataError) as exc:
        load_pairs(tmp_path / "nowhere.csv")
    _assert_data_error(exc, "nowhere.csv")


# --- load_task --------------------------------------------------------------------------------

def test_load_task_with_header(tmp_path):
    path = _jsonl(tmp_path / "t.jsonl", [
        {"task": "topic", "labels": ["sport", "food"], "label_words": {"sport": " S",
                                                                       "food": " F"},
         "prompt_template": "Text: {text}\nTopic:"},
        {"id": "a", "text": "He scored.", "label": "sport",
         "perturbations": {"typo": "He scorde.", "casing": "he scored"}},
        {"id": "b", "text": "Tasty soup.", "label": "food"},
    ])
    task = load_task(path)
    assert task.name == "topic" and task.labels == ("sport", "food")
    assert task.label_words == (("sport", " S"), ("food", " F"))
    assert task.prompt_template == "Text: {text}\nTopic:"
    assert task.examples[0].perturbations == (("typo", "He scorde."), ("casing", "he scored"))
    assert task.examples[1].perturbations == ()
    assert load_task(path, name="mine").name == "mine"


def test_load_task_defaults(tmp_path):
    path = _jsonl(tmp_path / "mytask.jsonl", [{"text": "Yes.", "label": "b"},
                                               {"text": "No.", "label": "a"},
                                               {"text": "Maybe.", "label": "b"}])
    task = load_task(path)
    assert task.name == "mytask"
    assert task.labels == ("a", "b")
    assert task.label_words == (("a", " a"), ("b", " b"))
    assert task.prompt_template == "{text}\nAnswer:"
    assert [ex.id for ex in task.examples] == ["line1", "line2", "line3"]


HEADER = {"task": "t", "labels": ["neg", "pos"]}


@pytest.mark.parametrize("rows, line, field", [
    ([HEADER, {"text": "ok", "label": "pos"}, {"label": "neg"}], 3, "text"),
    ([HEADER, {"text": "  ", "label": "neg"}], 2, "text"),
    ([HEADER, {"text": "ok", "label": "maybe"}], 2, "label"),
    ([HEADER, {"text": "ok"}], 2, "label"),
    ([HEADER, {"text": "ok", "label": "pos", "perturbations": ["a", "b"]}], 2, "perturbations"),
    ([HEADER, {"text": "ok", "label": "pos", "perturbations": {"typo": 3}}], 2, "perturbations"),
    ([{**HEADER, "prompt_template": "Review: {review}"}, {"text": "ok", "label": "pos"}], 1,
     "prompt_template"),
    ([{**HEADER, "label_words": {"neg": " no"}}, {"text": "ok", "label": "pos"}], 1,
     "label_words"),
    ([{**HEADER, "labels": "pos"}, {"text": "ok", "label": "pos"}], 1, "labels"),
    ([HEADER, {"id": "x", "text": "a", "label": "pos"}, {"id": "x", "text": "b", "label": "neg"}],
     3, "id"),
])
def test_load_task_errors(tmp_path, rows, line, field):
    path = _jsonl(tmp_path / "bad_task.jsonl", rows)
    with pytest.raises(DataError) as exc:
        load_task(path)
    _assert_data_error(exc, "bad_task.jsonl", line, field)


@pytest.mark.parametrize("rows", [[HEADER], [], [{"text": "a", "label": "x"}]])
def test_load_task_without_examples_or_labels(tmp_path, rows):
    path = _jsonl(tmp_path / "few.jsonl", rows)
    with pytest.raises(DataError) as exc:
        load_task(path)
    _assert_data_error(exc, "few.jsonl")


def test_load_task_missing_file(tmp_path):
    with pytest.raises(DataError) as exc:
        load_task(tmp_path / "absent.jsonl")
    _assert_data_error(exc, "absent.jsonl")


# --- the hub ----------------------------------------------------------------------------------

@pytest.fixture
def no_datasets(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail


@pytest.mark.parametrize("call", [lambda: hf_pairs("mrpc"), lambda: hf_pairs("tapaco"),
                                  lambda: hf_task("sst2"), lambda: hf_task("glue/rte")])
def test_hub_loaders_without_datasets(no_datasets, call):
    with pytest.raises(TunescopeError) as exc:
        call()
    msg = str(exc.value)
    assert "pip install tunescope[online]" in msg and "\n" not in msg


def _fake_datasets(monkeypatch, data=None, error=None):
    calls = []

    def load_dataset(hub_id, config=None, split=None):
        calls.append((hub_id, config, split))
        if error:
            raise error
        return list(data[(hub_id, config)])

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    return calls


@pytest.mark.parametrize("call, hint", [(lambda: hf_pairs("mrpc"), "load_pairs(path)"),
                                        (lambda: hf_task("sst2"), "load_task(path)")])
def test_hub_loaders_offline(monkeypatch, call, hint):
    _fake_datasets(monkeypatch, error=ConnectionError("Couldn't reach the hub\nmore detail"))
    with pytest.raises(TunescopeError) as exc:
        call()
    msg = str(exc.value)
    assert "unreachable" in msg and hint in msg and "\n" not in msg


def test_hub_loaders_unknown_names():
    with pytest.raises(TunescopeError, match="unknown paraphrase dataset"):
        hf_pairs("nope")
    with pytest.raises(TunescopeError, match="unknown task"):
        hf_task("nope")


def test_hf_pairs_mrpc_with_fake_hub(monkeypatch):
    rows = [{"sentence1": "A.", "sentence2": "B.", "label": 1, "idx": 0},
            {"sentence1": "C.", "sentence2": "D.", "label": 0, "idx": 1},
            {"sentence1": "E.", "sentence2": "F.", "label": -1, "idx": 2}]
    calls = _fake_datasets(monkeypatch, {("nyu-mll/glue", "mrpc"): rows})
    assert hf_pairs("glue/mrpc") == [ParaphrasePair("A.", "B.", 1, "mrpc"),
                                     ParaphrasePair("C.", "D.", 0, "mrpc")]
    assert len(hf_pairs("mrpc", limit=1)) == 1
    assert calls[0] == ("nyu-mll/glue", "mrpc", "validation")


def test_hf_pairs_tapaco_with_fake_hub(monkeypatch):
    rows = [{"paraphrase_set_id": str(g), "sentence_id": str(i), "paraphrase": f"g{g} s{i}"}
            for g in range(6) for i in range(3)]
    _fake_datasets(monkeypatch, {("community-datasets/tapaco", "en"): rows})
    pairs = hf_pairs("tapaco", seed=1)
    assert pairs == hf_pairs("tapaco", seed=1)
    assert Counter(p.label for p in pairs) == {1: 6, 0: 6}
    for p in pairs:
        same = p.a.split()[0] == p.b.split()[0]
        assert same == (p.label == 1) and p.a != p.b
    assert len(hf_pairs("tapaco", limit=5)) == 5


def test_tapaco_pairs_skips_singletons():
    pairs = tapaco_pairs({"1": ["a", "b"], "2": ["c"], "3": ["d", "e", "f"]}, seed=0)
    assert Counter(p.label for p in pairs) == {1: 2, 0: 2}


def test_hf_task_with_fake_hub(monkeypatch):
    sst = [{"sentence": "a gorgeous , witty film .", "label": 1, "idx": 0},
           {"sentence": "dull and overlong .", "label": 0, "idx": 1},
           {"sentence": "unlabelled .", "label": -1, "idx": 2}]
    rte = [{"sentence1": "Tom owns a dog.", "sentence2": "Tom has a pet.", "label": 0, "idx": 0},
           {"sentence1": "It rained.", "sentence2": "It was sunny.", "label": 1, "idx": 1}]
    _fake_datasets(monkeypatch, {("nyu-mll/glue", "sst2"): sst, ("nyu-mll/glue", "rte"): rte})
    task = hf_task("sst2")
    assert task.labels == ("negative", "positive") and len(task.examples) == 2
    assert [ex.label for ex in task.examples] == ["positive", "negative"]
    for row, ex in enumerate(task.examples):  # seed 0: the seed is the row number
        kinds = dict(ex.perturbations)
        assert set(kinds) == {"typo", "casing", "synonym"}  # "film", "dull": in the table
        assert all(v != ex.text for v in kinds.values())
        assert kinds["synonym"] == synonym_swap(ex.text, row)
    assert hf_task("sst2") == task
    assert hf_task("sst2", limit=1).examples == task.examples[:1]
    rte_task = hf_task("rte")
    assert rte_task.labels == ("entailment", "not_entailment")
    assert rte_task.examples[0].text == "Tom owns a dog. Tom has a pet."
    assert [ex.label for ex in rte_task.examples] == ["entailment", "not_entailment"]
