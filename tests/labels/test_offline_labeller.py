"""The offline concept labeller: what its rules say about hand-made components (expected labels
computed by hand), and label-for-label agreement with an independent oracle
(``tests/offline_reference.py``, written from the documented rules, sharing only the data
tables) on hand-written, adversarial and real-vocabulary components. The comparison is shown to
fail when one rule of the labeller is broken."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from offline_reference import (
    is_sound_word,
    is_syntax_word,
    oracle_ending,
    oracle_group_suffixes,
    oracle_inflection_bases,
    oracle_label,
    oracle_stem,
    oracle_word_tasks,
)

from tunescope.labels import offline_labeller
from tunescope.labels.offline_labeller import (
    OfflineLabeller,
    level_features,
    word_tasks,
)

MATH = ["number", "sum", "equation", "calculate", "42", "3.14", "fraction", "apple", "tree",
        "house"]
CODE = ["function", "variable", "python", "code", "snake_case", "getValue", ".py", "river",
        "garden", "happy"]
TRANSLATION = ["translate", "French", "Spanish", "German", "language", "café", "garden",
               "happy", "river", "cloud"]
WRITING = ["essay", "story", "poem", "write", "novel", "chapter", "river", "cloud", "happy",
           "stone"]
FUNCTION = ["the", "of", "and", "to", "in", "is", "that", "was", "for", "on", "with", "as"]
SUFFIX = ["walking", "talking", "running", "jumping", "singing", "reading", "garden", "cloud"]
RHYME = ["light", "night", "fight", "sight", "bright", "garden", "cloud"]
ANIMALS = ["dog", "cat", "horse", "cow", "sheep", "goat", "pig", "lion", "tiger", "wolf"]

# Words chosen to set off every rule: case and space variants of one word, stems, inflections
# with a final e and doubled letters, suffix groups, rhymes, fragments, function words,
# punctuation, numbers, math symbols, code, accents, empty strings.
TRICKY = (FUNCTION + SUFFIX + RHYME + MATH + CODE + TRANSLATION + WRITING + [
    "The", " the", "THE ", "", "  ", ",", ".", "--", "make", "making", "made", "maker", "makes",
    "run", "running", "runs", "runner", "nation", "national", "nations", "happiness",
    "kindness", "darkness", "movement", "moment", "sound", "rhyme", "th", "ng", "st", "ch",
    "xyz", "b", "ly", "40", "+", "=", "x+y", "a_b", "fooBar", ".js", "naïve", "日本", "été",
    "walk", "walked", "walker", "walks", "talk", "jump", "sing", "read", "light", "lights",
    "creation", "create", "created", "creating", "stop", "stopped", "stopping", "hope", "hoped",
    "hoping", "night", "tonight", "ation", "ness", "fitness", "witness", "goodness", "cat",
    "cats", "bat", "hat", "that", "what", "n't", "'s", "Equations", "PROOFS", "Python!",
    "x == 1", "-3,5", "50%", "1.2.3", "日本語", "Über", "∑", "±"])

# Hand-written components, at least one per category and per level (and mixtures).
HAND_WRITTEN = [
    MATH, CODE, TRANSLATION, WRITING, FUNCTION, SUFFIX, RHYME, ANIMALS,
    ["poem", "poems", "Poetry", "poet", "verse", "rhyme", "rhymes", "stanza", "lyric"],
    ["integer", "integers", "7", "+", "×", "divide", "division", "ratio", "the", "of"],
    ["def", "lambda", "__init__", "self.x", "i++", "a->b", "std::vector", "</div>", "$var"],
    ["le", "la", "les", "und", "der", "das", "el", "los", "que", "il", "che"],
    ["the", "a", "an", ",", ".", ";", "of", "The", "A", "dog"],
    ["vowel", "consonant", "syllable", "th", "ng", "pr", "st", "cloud", "tree"],
    ["cake", "lake", "make", "bake", "take", "rain"],
    ["nation", "national", "nations", "creation", "relation", "station", "garden"],
    ["walked", "talked", "jumped", "played", "looked", "asked", "river", "stone"],
    ["", " ", "  "], [], ["dog"], [","], ["TH"], ["Café"],
]

# (words, keyword arguments, expected (category, level, description)), computed by hand from
# the documented rules; each comment gives the count that decides it.
HAND_CASES = [
    # nothing at all: no task, no level evidence (shares 0)
    ([], {}, ("none", "semantics", "none; semantics")),
    # only blank words: left out, n = 0
    (["", " ", "\t"], {}, ("none", "semantics", "none; semantics")),
    # words in no lexicon, no level evidence
    (["dog", "horse"], {}, ("none", "semantics", "none; semantics")),
    # function and variable are in both the math and coding lexicons: 2-2, math listed first
    (["function", "variable"], {},
     ("math", "semantics", "math (2/2: function, variable); semantics")),
    # writing (poem) and translation (french) tie 1-1: writing listed first (min_hits=1)
    (["poem", "french", "garden"], {"min_hits": 1},
     ("writing", "semantics", "writing (1/3: poem); semantics")),
    # ... and with the default min_hits = 2 no task has enough words
    (["poem", "french", "garden"], {}, ("none", "semantics", "none; semantics")),
    # case and spaces are normalised; "," is punctuation: syntax 3/4
    (["The", " OF ", ",", "Dog"], {}, ("none", "syntax", "none; syntax (the, of, ,)")),
    # plurals: "equations" -> "equation", "proofs" -> "proof"; the description keeps the case
    (["Equations", "Proofs", "boxes"], {},
     ("math", "semantics", "math (2/3: Equations, Proofs); semantics")),
    # three -ness words form a group (>= max(3, round(0.75)) = 3): morphology 3/5
    (["kindness", "darkness", "sadness", "tree", "cloud"], {},
     ("none", "morphology", "none; morphology (darkness, kindness, sadness)")),
    # n = 30: the group threshold is max(3, round(4.5)) = 4 (half to even), so four -ness
    # words make a group: morphology 4/30 >= 0.1
    (["kindness", "darkness", "sadness", "fitness"] + ["dog"] * 26, {"level_share": 0.1},
     ("none", "morphology", "none; morphology (darkness, fitness, kindness, sadness)")),
    # ... while three do not (3 < 4): no evidence
    (["kindness", "darkness", "sadness"] + ["dog"] * 27, {"level_share": 0.1},
     ("none", "semantics", "none; semantics")),
    # a phonology-syntax tie (1-1) goes to phonology; "of" is a function word, no fragment
    (["th", "of"], {}, ("none", "phonology", "none; phonology (th)")),
    # a morphology-syntax tie (2-2) goes to morphology: making inflects make
    (["make", "making", "the", "of"], {},
     ("none", "morphology", "none; morphology (make, making)")),
    # seven fragments: the first five of the sorted evidence
    (["th", "zz", "ng", "st", "ch", "sh", "b"], {},
     ("none", "phonology", "none; phonology (b, ch, ng, sh, st)")),
    # non-ASCII letters are translation; 日本 is a two-letter alphabetic fragment (1/3)
    (["café", "naïve", "日本"], {},
     ("translation", "phonology", "translation (3/3: café, naïve, 日本); phonology (日本)")),
    # code shapes: snake_case, camelCase, file extension; "x+y" is neither math nor code
    (["snake_case", "getValue", ".py", "x+y", "tree"], {},
     ("coding", "semantics", "coding (3/5: snake_case, getValue, .py); semantics")),
    # numbers and math symbols: 5/6; "+" is also punctuation, "x" a fragment (1/6 each)
    (["42", "-3,5", "+", "50%", "1.2.3", "x"], {},
     ("math", "semantics", "math (5/6: 42, -3,5, +, 50%, 1.2.3); semantics")),
    # a rhyme group whose ending is part of a suffix ("ing") is no rhyme, and the -ing words
    # form no suffix group (one letter before "ing", three needed): no evidence
    (["sing", "ring", "king", "tree"], {},
     ("none", "semantics", "none; semantics")),
    # rhymes: "ight" x4 (case variants count once as evidence, every time in the group)
    (["Light", "night", "light", "fight"], {},
     ("none", "phonology", "none; phonology (fight, light, night)")),
    # zero thresholds, read literally: writing wins a 0-0-0-0 tie, phonology a 0-0-0 tie
    (["dog"], {"min_share": 0.0, "min_hits": 0, "level_share": 0.0},
     ("writing", "phonology", "writing; phonology")),
]


def as_tuple(label) -> tuple[str, str, str]:
    assert label.parsed is True
    return label.category, label.level, label.description


def label_one(words, **kw):
    return OfflineLabeller(**kw).label_one(words)


def disagreements(components, **kw) -> list:
    """(words, labeller's, oracle's) for every component where they differ."""
    got = OfflineLabeller(**kw).label_all(components)
    assert len(got) == len(components)
    pairs = [(words, as_tuple(g), oracle_label(words, **kw)) for words, g in zip(components, got)]
    return [(words, g, want) for words, g, want in pairs if g != want]


# ---- one word ---------------------------------------------------------------------------------

def _rules_agree(raw: str) -> None:
    assert word_tasks(raw) == oracle_word_tasks(raw), raw
    w = raw.strip().lower()
    alpha = w.isalpha()
    got = level_features(w)
    assert got[:5] == (alpha, is_syntax_word(w), is_sound_word(w),
                       oracle_stem(w) if alpha else "", oracle_ending(w)), raw
    assert set(got[5]) == (oracle_group_suffixes(w) if alpha else set()), raw
    assert set(got[6]) == (oracle_inflection_bases(w) if alpha else set()), raw


def test_word_rules_equal_the_oracle_on_real_vocabulary():
    import tunescope

    for raw in list(tunescope.data.frequent_words(26000).words) + TRICKY:
        _rules_agree(raw)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from("abeilnorstygkmAZ_.-+=%$#;:()[]{}<>/ 0123456789éπ日'"),
               max_size=12))
def test_word_rules_equal_the_oracle_on_any_text(raw):
    _rules_agree(raw)


# ---- hand-computed labels -----------------------------------------------------------------------

@pytest.mark.parametrize("words, kw, expected", HAND_CASES,
                         ids=[f"case{i}" for i in range(len(HAND_CASES))])
def test_hand_computed_labels(words, kw, expected):
    assert oracle_label(words, **kw) == expected
    assert as_tuple(label_one(words, **kw)) == expected


@pytest.mark.parametrize("words, category", [(MATH, "math"), (CODE, "coding"),
                                             (TRANSLATION, "translation"), (WRITING, "writing"),
                                             (ANIMALS, "none"), (FUNCTION, "none")])
def test_offline_category(words, category):
    assert label_one(words).category == category


@pytest.mark.parametrize("words, level", [(FUNCTION, "syntax"), (SUFFIX, "morphology"),
                                          (["make", "making", "made", "run", "running", "runs",
                                            "tree", "cloud"], "morphology"),
                                          (RHYME, "phonology"),
                                          (["th", "ng", "st", "ch", "sh", "tree"], "phonology"),
                                          (ANIMALS, "semantics"), (MATH, "semantics")])
def test_offline_level(words, level):
    assert label_one(words).level == level


def test_offline_runs_are_identical_and_threshold_applies():
    labels = OfflineLabeller().label([MATH, CODE, ANIMALS], runs=3)
    assert [len(x) for x in labels] == [3, 3, 3]
    assert all(len(set(x)) == 1 for x in labels)
    assert "number" in labels[0][0].description
    # two math words among fifty stay below the 10% share
    diluted = ["number", "sum"] + [f"word{i}x" for i in range(48)]
    assert label_one(diluted).category == "none"
    assert label_one(diluted, min_share=0.02).category == "math"


def test_descriptions_name_the_evidence():
    assert label_one(MATH).description == (
        "math (7/10: number, sum, equation, calculate, 42); semantics")
    # phonology evidence is sorted; the case variants count once
    assert label_one(["Light", "night", "light", "fight", "sight"]).description == (
        "none; phonology (fight, light, night, sight)")
    # syntax evidence keeps every occurrence in order
    assert label_one(["the", "of", "the", "cat"]).description == "none; syntax (the, of, the)"
    # an inflection pair counts both words; empty words are left out of n
    assert label_one(["make", "making", "", " ", "tree"]).description == (
        "none; morphology (make, making)")


def test_empty_and_ragged_components():
    labels = OfflineLabeller().label_all([[], ["", " "], FUNCTION, ["dog"]])
    assert [(x.category, x.level) for x in labels] == [
        ("none", "semantics"), ("none", "semantics"), ("none", "syntax"), ("none", "semantics")]
    assert OfflineLabeller().label_all([]) == []


# ---- labeller against the oracle ----------------------------------------------------------------

SETTINGS = [{}, {"min_share": 0.0, "min_hits": 0, "level_share": 0.0},
            {"min_share": 0.3, "min_hits": 1, "level_share": 0.5},
            {"min_share": 0.05, "min_hits": 3, "level_share": 0.1}]


@pytest.mark.parametrize("kw", SETTINGS)
def test_labels_equal_the_oracle_on_hand_written_components(kw):
    components = HAND_WRITTEN + [words for words, _, _ in HAND_CASES]
    # every component also with its words reversed and in upper case
    components += [words[::-1] for words in components] + [
        [w.upper() for w in words] for words in components]
    assert disagreements(components, **kw) == []
    if not kw:
        labels = {oracle_label(words) for words in components}
        assert {lab[0] for lab in labels} == {"writing", "math", "coding", "translation", "none"}
        assert {lab[1] for lab in labels} == {"phonology", "morphology", "syntax", "semantics"}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from(TRICKY), max_size=60), min_size=1, max_size=8),
       st.sampled_from([0.0, 0.05, 0.1, 0.3]), st.integers(0, 3),
       st.sampled_from([0.0, 0.1, 0.3, 0.5]))
def test_vectorised_labels_equal_the_oracle(components, min_share, min_hits, level_share):
    kw = {"min_share": min_share, "min_hits": min_hits, "level_share": level_share}
    assert disagreements(components, **kw) == []


def real_vocabulary_components(count: int = 3000, size: int = 50) -> list[list[str]]:
    """``count`` components of ``size`` words from the 5,000 most frequent English words and
    the tricky words: a third drawn at random, a third from a window of the words sorted by
    spelling (shared stems), a third sorted by reversed spelling (shared endings: suffix groups
    and rhymes)."""
    import tunescope

    vocab = list(tunescope.data.frequent_words(5000).words) + TRICKY
    orders = [vocab, sorted(vocab), sorted(vocab, key=lambda w: w[::-1])]
    rng = np.random.default_rng(0)
    components = []
    for i in range(count):
        pool = orders[i % 3]
        if i % 3:
            start = rng.integers(0, len(pool) - 80)
            pool = pool[start:start + 80]
        components.append([pool[j] for j in rng.integers(0, len(pool), size)])
    return components


def test_vectorised_labels_equal_the_oracle_on_real_vocabulary():
    """3,000 components of 50 words (more than one block of rows), labelled at once."""
    components = real_vocabulary_components()
    assert disagreements(components) == []
    labels = [oracle_label(words) for words in components]
    assert {x[1] for x in labels} == {"phonology", "morphology", "syntax", "semantics"}
    assert len({x[0] for x in labels}) >= 3


# ---- the comparison can fail ---------------------------------------------------------------------

def _clear_caches():
    for f in (offline_labeller.stem, offline_labeller.overlaps_suffix,
              offline_labeller.level_features, offline_labeller.word_row):
        f.cache_clear()


MUTANTS = {
    # tasks named in the wrong tie order
    "task tie order": lambda mp: mp.setattr(offline_labeller, "TASKS",
                                            tuple(reversed(offline_labeller.TASKS))),
    # no stems shared: morphology by stem is gone
    "no stems": lambda mp: mp.setattr(offline_labeller, "stem", lambda w: w + "#"),
    # every ending counts as a rhyme, suffix or not
    "rhymes on suffixes": lambda mp: mp.setattr(offline_labeller, "overlaps_suffix",
                                                lambda end: False),
    # plurals no longer found in the lexicons
    "no plurals": lambda mp: mp.setattr(
        offline_labeller, "_task_bits",
        lambda raw, real=offline_labeller._task_bits: 0 if raw.strip().endswith("s")
        else real(raw)),
}


@pytest.mark.parametrize("mutant", list(MUTANTS))
def test_the_comparison_catches_a_broken_rule(mutant, monkeypatch):
    """One rule of the labeller broken by monkeypatching: the oracle must disagree."""
    components = [*HAND_WRITTEN, *(words for words, _, _ in HAND_CASES),
                  *real_vocabulary_components(300)]
    _clear_caches()
    try:
        with monkeypatch.context() as mp:
            MUTANTS[mutant](mp)
            found = disagreements(components)
    finally:
        _clear_caches()
    assert found, f"breaking '{mutant}' went unnoticed"
    assert disagreements(components) == []
