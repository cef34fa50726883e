"""The offline concept labeller: what its rules say about hand-made components, and label for
label agreement of the vectorised labeller with the per-component reference
(``offline_reference.py``) on adversarial and on real-vocabulary components."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import offline_reference
from offline_reference import reference_label
from tunescope.labels.offline_labeller import OfflineLabeller, level_features, word_tasks

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
    "cats", "bat", "hat", "that", "what", "n't", "'s"])


def _rules_agree(raw: str) -> None:
    stripped, norm, tasks = offline_reference._word_info(raw)
    assert word_tasks(raw) == tasks, raw
    assert level_features(norm) == offline_reference._level_features(norm), raw


def test_word_rules_equal_the_reference_on_real_vocabulary():
    import tunescope

    for raw in list(tunescope.data.frequent_words(26000).words) + TRICKY:
        _rules_agree(raw)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from("abeilnorstygkmAZ_.-+=%$#;:()[]{}<>/ 0123456789éπ日'"),
               max_size=12))
def test_word_rules_equal_the_reference_on_any_text(raw):
    _rules_agree(raw)


def label_one(words, **kw):
    return OfflineLabeller(**kw).label_one(words)


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


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from(TRICKY), max_size=60), min_size=1, max_size=8),
       st.sampled_from([0.0, 0.05, 0.1, 0.3]), st.integers(0, 3),
       st.sampled_from([0.0, 0.1, 0.3, 0.5]))
def test_vectorised_labels_equal_the_reference(components, min_share, min_hits, level_share):
    kw = dict(min_share=min_share, min_hits=min_hits, level_share=level_share)
    assert OfflineLabeller(**kw).label_all(components) == [
        reference_label(words, **kw) for words in components]


def test_vectorised_labels_equal_the_reference_on_real_vocabulary():
    """3,000 components of 50 words from the 5,000 most frequent English words and the tricky
    words (more than one block of rows): a third drawn at random, a third from a window of the
    words sorted by spelling (shared stems), a third sorted by reversed spelling (shared
    endings: suffix groups and rhymes)."""
    import tunescope

    vocab = list(tunescope.data.frequent_words(5000).words) + TRICKY
    orders = [vocab, sorted(vocab), sorted(vocab, key=lambda w: w[::-1])]
    rng = np.random.default_rng(0)
    components = []
    for i in range(3000):
        pool = orders[i % 3]
        if i % 3:
            start = rng.integers(0, len(pool) - 80)
            pool = pool[start:start + 80]
        components.append([pool[j] for j in rng.integers(0, len(pool), 50)])
    labels = OfflineLabeller().label_all(components)
    assert labels == [reference_label(words) for words in components]
    assert {x.level for x in labels} == {"phonology", "morphology", "syntax", "semantics"}
    assert len({x.category for x in labels}) >= 3

