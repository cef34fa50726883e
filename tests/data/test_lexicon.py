"""The lexical layer of W2/W3: vocabularies with frequencies and the verb lists."""

from __future__ import annotations

import pytest
from conftest import SHARED_DATA

from tunescope.data.verbs import (
    INSTRUCTION_VERBS,
    MIN_VERBAL_RATIO,
    STOPWORDS,
    general_verbs,
    verbal_ratio,
)
from tunescope.data.vocabulary import Vocabulary, frequent_words, load_word_frequencies
from tunescope.errors import DataError

STUDY_VOCAB = SHARED_DATA / "wu2024" / "SingleShareGPT_Vocab.tsv"


# --- Vocabulary ---------------------------------------------------------------------------------

def test_vocabulary_top():
    v = Vocabulary(("a", "b", "c"), (0.5, 0.3, 0.2), "test")
    top = v.top(2)
    assert top.words == ("a", "b") and top.frequencies == (0.5, 0.3) and top.source == "test"
    assert v.top(10) == v
    assert len(v) == 3 and list(v) == ["a", "b", "c"] and "b" in v
    with pytest.raises(ValueError):
        Vocabulary(("a",), (0.1, 0.2), "test")


def test_frequent_words():
    v = frequent_words(2000)
    assert len(v) == 2000 and len(set(v.words)) == 2000
    assert v.source == "wordfreq:en"
    assert all(w.isalpha() and w == w.lower() for w in v.words)
    assert v.words[0] == "the"
    assert list(v.frequencies) == sorted(v.frequencies, reverse=True)
    assert all(f > 0 for f in v.frequencies)
    assert frequent_words(10).words == v.words[:10]


# --- word-frequency files -----------------------------------------------------------------------

def test_load_word_frequencies_sorts_stably_and_skips_header(tmp_path):
    path = tmp_path / "vocab.tsv"
    path.write_text("word\tfrequency\nb\t0.1\na\t0.3\n\nc\t0.1\nd\t2e-3\n", encoding="utf-8")
    v = load_word_frequencies(path)
    assert v.words == ("a", "b", "c", "d")
    assert v.frequencies == (0.3, 0.1, 0.1, 0.002)
    assert v.source == str(path)


def test_load_word_frequencies_without_header(tmp_path):
    path = tmp_path / "vocab.tsv"
    path.write_text(",\t0.04\nthe\t0.039\n", encoding="utf-8")
    assert load_word_frequencies(path).words == (",", "the")


@pytest.mark.parametrize("text, line, field", [
    ("a\t0.3\nb 0.2\n", 2, "frequency"),            # no tab
    ("a\t0.3\nb\tmany\n", 2, "frequency"),          # not a number
    ("a\t0.3\n\t0.2\n", 2, "word"),                 # empty word
    ("a\t0.3\nb\t-1\n", 2, "frequency"),            # negative
    ("a\t0.3\nb\tnan\n", 2, "frequency"),           # not finite
    ("a\t0.3\nb\t0.2\t7\n", 2, "frequency"),        # three columns
    ("a\t0.3\nb\t0.2\na\t0.1\n", 3, "word"),        # repeated word
    ("word\tfrequency\nx\t1\ny\tlots\n", 3, "frequency"),
])
def test_load_word_frequencies_bad_rows(tmp_path, text, line, field):
    path = tmp_path / "bad.tsv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_word_frequencies(path)
    err = info.value
    assert (err.path, err.line, err.field) == (str(path), line, field)
    assert str(err).startswith(f"{path}:{line}: field '{field}'")


@pytest.mark.parametrize("text", ["", "\n\n", "word\tfrequency\n"])
def test_load_word_frequencies_empty(tmp_path, text):
    path = tmp_path / "empty.tsv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match="no word-frequency rows") as info:
        load_word_frequencies(path)
    assert info.value.path == str(path)


def test_load_word_frequencies_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_word_frequencies(tmp_path / "absent.tsv")
    with pytest.raises(DataError, match="directory"):
        load_word_frequencies(tmp_path)


@pytest.mark.skipif(not STUDY_VOCAB.exists(), reason="shared wu2024 data not present")
def test_study_vocabulary():
    v = load_word_frequencies(STUDY_VOCAB)
    assert len(v) == 26497 and len(set(v.words)) == 26497
    assert v.words[:6] == (",", "the", ".", "and", "a", "to")
    assert v.frequencies[0] == pytest.approx(0.040975909291537695)
    assert list(v.frequencies) == sorted(v.frequencies, reverse=True)
    assert v.top(3000).words == v.words[:3000]


# --- verbs --------------------------------------------------------------------------------------

def test_instruction_verbs():
    assert len(INSTRUCTION_VERBS) == 38 and len(set(INSTRUCTION_VERBS)) == 38
    assert INSTRUCTION_VERBS[:3] == ("write", "give", "find")
    assert INSTRUCTION_VERBS[-1] == "evaluate"
    assert all(v.isalpha() and v == v.lower() for v in INSTRUCTION_VERBS)
    assert all(w.isalpha() and w == w.lower() for w in STOPWORDS) and len(STOPWORDS) > 150


def test_general_verbs():
    verbs = general_verbs()
    assert len(verbs) == 3000 and len(set(verbs)) == 3000
    assert not set(verbs) & STOPWORDS
    assert not set(verbs) & set(INSTRUCTION_VERBS)
    for verb in ("go", "eat", "run", "know", "buy", "put", "cook", "swim", "sing"):
        assert verb in verbs, verb
    # Not verbs at all, inflected forms, auxiliaries / modals, and nouns that lemminflect also
    # lists as verbs but that running text hardly uses as verbs ("tabled" is < 1% of "table").
    for word in ("the", "and", "of", "idea", "beautiful", "quickly", "went", "running",
                 "be", "have", "can", "will", "table", "water", "people", "time"):
        assert word not in verbs, word
    assert verbs.index("go") < verbs.index("eat") < verbs.index("swim")  # by frequency
    assert general_verbs(50) == verbs[:50]


def test_verbal_ratio_rule():
    assert verbal_ratio("eat") > MIN_VERBAL_RATIO          # ate / eaten
    assert verbal_ratio("put") > MIN_VERBAL_RATIO          # past = base: putting counts
    assert verbal_ratio("table") < MIN_VERBAL_RATIO
    assert verbal_ratio("went") is None                    # a form of "go", not a lemma
    assert verbal_ratio("found") is None                   # mainly a form of "find"
    assert verbal_ratio("idea") is None


def test_general_verbs_disk_cache(tmp_path, monkeypatch):
    from tunescope.data import verbs as verbs_module

    monkeypatch.setenv("TUNESCOPE_CACHE", str(tmp_path))
    verbs_module._general_verbs.cache_clear()
    try:
        computed = general_verbs(40)
        path = verbs_module._cache_file(40)
        assert path.parent == tmp_path / "lexicons"
        assert path.read_text().split("\n") == computed
        # a complete cached list is what later processes read (here: a marked one)
        path.write_text("\n".join(["zzz"] + computed[1:]))
        verbs_module._general_verbs.cache_clear()
        assert general_verbs(40)[0] == "zzz"
        # a damaged one (wrong length, not words) is recomputed and replaced
        path.write_text("go\n<b>eat</b>")
        verbs_module._general_verbs.cache_clear()
        assert general_verbs(40) == computed and path.read_text().split("\n") == computed
        # an unwritable cache (here a file where the directory should be) only costs the time
        blocked = tmp_path / "blocked"
        blocked.write_text("not a directory")
        monkeypatch.setenv("TUNESCOPE_CACHE", str(blocked))
        verbs_module._general_verbs.cache_clear()
        assert general_verbs(40) == computed
    finally:
        verbs_module._general_verbs.cache_clear()
