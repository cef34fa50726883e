"""The offline concept labeller (docs/methods.md#w3): a user task and a linguistic level for each
principal component from its top words, by rules written here. No model, no network,
deterministic: every run gives the same label.

The rules look at one word at a time (:func:`word_row`: cached per word, since a vocabulary's
words recur across components) and then at the words of one
component together (shares, shared stems, suffix groups, rhymes). The second part runs for all
components at once as array operations over a [components, words] matrix of word ids, which is
what makes labelling thousands of components take a fraction of a second.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from tunescope.common import gc_pause
from tunescope.labels.concept_labels import ConceptLabel

CATEGORY_LEXICONS: dict[str, frozenset[str]] = {
    "writing": frozenset("""
        write writer writes writing written wrote essay story poem poetry poet novel fiction
        narrative narrator paragraph sentence prose author chapter article blog headline draft
        editor editing plot character tale verse rhyme lyric lyrics literature literary compose
        composition describe description summary summarize summarise outline manuscript publish
        journal diary memoir biography screenplay dialogue stanza metaphor genre reader book
        """.split()),
    "math": frozenset("""
        math maths mathematics mathematical number sum equation calculate calculation calculator
        compute arithmetic algebra geometry calculus theorem proof formula integer fraction
        decimal percent percentage multiply multiplication divide division subtract subtraction
        add addition plus minus equal equals ratio probability statistics average median variance
        derivative integral matrix vector polynomial prime digit solve angle triangle circle
        radius zero two three four five six seven eight nine ten hundred thousand million billion
        quantity infinity logarithm exponent function variable
        """.split()),
    "coding": frozenset("""
        code coding coder programming programmer software function variable python java
        javascript typescript html css sql json xml api array boolean loop compile compiler
        debug debugging bug syntax script module import def lambda null int float char void
        const var async await struct enum interface git github repository database query
        algorithm parameter recursion iterate iterator runtime console bash linux unix http url
        regex implement implementation deploy backend frontend
        """.split()),
    "translation": frozenset("""
        translate translation translator translated language bilingual multilingual english
        french spanish german italian portuguese chinese japanese korean russian arabic hindi
        dutch greek latin turkish polish swedish vietnamese thai hebrew persian mandarin
        cantonese dialect vocabulary foreign fluent interpreter idiom
        le la les des est une und der das ist nicht ein eine el los las por para que con una
        il che della sono
        """.split()),
}
"""Words typical of each user task (the offline labeller's evidence, beside string heuristics:
numbers and math symbols count for math, identifier-like strings for coding, accented or
non-Latin words for translation). Words common in general text (times, class, return, server)
are left out: they would label ordinary concepts as tasks."""

TASKS = tuple(CATEGORY_LEXICONS)
"""The user tasks in the order ties are broken (every category but "none")."""

FUNCTION_WORDS = frozenset("""
    a an the this that these those some any each every either neither no all both few many much
    more most other another such what which who whom whose where when why how whether if then
    than because since though although unless until while as so but and or nor yet for of to in
    on at by with from into onto upon about above below under over between among through during
    before after against without within along across behind beyond toward towards around near
    i me my mine we us our ours you your yours he him his she her hers it its they them their
    theirs myself yourself himself herself itself ourselves themselves one ones
    is am are was were be been being have has had having do does did doing will would shall
    should can could may might must ought not n't 's 're 've 'd 'll 'm there here also just only
    very too even still already ever never always often again once
    """.split())
"""Closed-class (grammatical) words: evidence for the syntax level."""

PHONOLOGY_WORDS = frozenset("""
    sound sounds rhyme rhymes rhyming vowel vowels consonant consonants syllable syllables
    pronounce pronounced pronunciation phonetic phonetics accent stress tone letter letters
    alphabet spelling spell spelled
    """.split())
"""Words about sounds and letters: evidence for the phonology level."""

SUFFIXES = ("ation", "ition", "ions", "tion", "sion", "ness", "ment", "ments", "able", "ible",
            "ings", "ing", "ised", "ized", "ize", "ise", "ful", "less", "ous", "ive", "ity",
            "ism", "ist", "ists", "est", "ers", "ly", "ed", "er", "es", "al", "s")
"""Inflectional and derivational suffixes (longest first where they overlap)."""

GROUP_SUFFIXES = tuple(s for s in SUFFIXES if len(s) >= 2 and s not in ("es", "er", "al"))
"""The suffixes whose groups of words count as morphology."""

_VOWELS = frozenset("aeiouy")
_MATH_SYMBOLS = set("+-*/=^%<>≤≥±×÷√π∑∫∞")
_CODE_MARKS = re.compile("|".join(map(re.escape, (
    "_", "()", "{", "}", "[]", "=>", "->", "::", "==", "!=", ";", "#", "</", "/>", "$"))))
_NUMBER = re.compile(r"[-+]?\d+([.,]\d+)*%?")
_IDENTIFIER = re.compile(r"[a-z]+[A-Z]\w*|\.[a-z]{1,4}")
_STEM_SUFFIXES = ("ational", "ations", "ation", "ically", "ical", "ics", "ings", "ing", "ions",
                  "ion", "ors", "or", "ers", "er", "ed", "es", "ly", "ic", "al", "s", "e")
_BIT = {c: 1 << k for k, c in enumerate(TASKS)}
_LEXICON = {w: sum(_BIT[c] for c in TASKS if w in CATEGORY_LEXICONS[c])
            for w in set().union(*CATEGORY_LEXICONS.values())}
_LEVEL_ORDER = ("phonology", "morphology", "syntax")      # ties go to the first
_ROWS = 2048                                              # components per block of array work


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A crude stem: ``word`` without one common suffix (or a final "e"), kept >= 3 letters."""
    if word.endswith(_STEM_SUFFIXES):
        for suffix in _STEM_SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                return word[:-len(suffix)]
    return word


def _task_bits(raw: str) -> int:
    """:func:`word_tasks` as bits (bit k: ``TASKS[k]``)."""
    s = raw.strip()
    w = s.lower()
    if not w:
        return 0
    bits = _LEXICON.get(w, 0)
    if w[-1] == "s":
        bits |= _LEXICON.get(w[:-1], 0)
        if w[-2:] == "es":
            bits |= _LEXICON.get(w[:-2], 0)
    if _NUMBER.fullmatch(w) or set(w) <= _MATH_SYMBOLS:
        bits |= _BIT["math"]
    if (_CODE_MARKS.search(s) and any(c.isalpha() for c in s)) or _IDENTIFIER.fullmatch(s):
        bits |= _BIT["coding"]
    if not w.isascii() and any(c.isalpha() and not c.isascii() for c in w):
        bits |= _BIT["translation"]
    return bits


def word_tasks(raw: str) -> tuple[str, ...]:
    """The user tasks of :data:`TASKS` (in that order) that the word ``raw`` is evidence for:
    the word stripped and in lower case, or its singular (without a final "s" or "es"), is in
    the task's lexicon, or it matches the task's string heuristic (math: a number, or math
    symbols only; coding: code punctuation beside a letter, camelCase, or a file extension;
    translation: a non-ASCII letter)."""
    bits = _task_bits(raw)
    return tuple(c for c in TASKS if bits & _BIT[c])


def inflection_bases(word: str) -> tuple[str, ...]:
    """Words that ``word`` may inflect: ``word`` without one of :data:`SUFFIXES` (base kept
    >= 3 letters), that base plus "e", or the base with a doubled final letter undone."""
    if not word.endswith(SUFFIXES):
        return ()
    out = []
    for suffix in SUFFIXES:
        if not word.endswith(suffix) or len(word) - len(suffix) < 3:
            continue
        base = word[:-len(suffix)]
        for a in (base, base + "e", base[:-1] if base[-1] == base[-2] else None):
            if a and a != word:
                out.append(a)
    return tuple(out)


@functools.lru_cache(maxsize=4096)
def overlaps_suffix(end: str) -> bool:
    """Whether a word ending ``end`` is (part of) a :data:`GROUP_SUFFIXES` suffix, so that
    words sharing it are morphology rather than rhymes."""
    return any(end.endswith(s) or s.endswith(end) for s in GROUP_SUFFIXES)


@functools.lru_cache(maxsize=262144)
def level_features(w: str) -> tuple:
    """What one normalised word contributes to the level: (alphabetic, syntax evidence,
    phonology evidence by itself, stem, final three letters ("" unless alphabetic with >= 4
    letters), group suffixes, inflection bases)."""
    alpha = w.isalpha()
    syntax = w in FUNCTION_WORDS or (not alpha and bool(w) and not any(c.isalnum() for c in w))
    phon = w in PHONOLOGY_WORDS or (alpha and w not in FUNCTION_WORDS and (
        len(w) <= 2 or (len(w) <= 4 and not set(w) & _VOWELS)))
    if not alpha:
        return False, syntax, phon, "", "", (), ()
    suffixes = (tuple(s for s in GROUP_SUFFIXES if w.endswith(s) and len(w) - len(s) >= 3)
                if w.endswith(GROUP_SUFFIXES) else ())
    return (True, syntax, phon, stem(w), w[-3:] if len(w) >= 4 else "", suffixes,
            inflection_bases(w))


_SUFFIX_BIT = {s: 1 << k for k, s in enumerate(GROUP_SUFFIXES)}


@functools.lru_cache(maxsize=262144)
def word_row(raw: str) -> tuple:
    """Everything the labeller needs of one word: (stripped, normalised, tasks as bits of
    :data:`TASKS`, alphabetic, syntax, phonology, stem, final three letters, group suffixes as
    bits of :data:`GROUP_SUFFIXES`, inflection bases) (see :func:`word_tasks` and
    :func:`level_features`); cached, since a vocabulary's words recur across components."""
    stripped = raw.strip()
    norm = stripped.lower()
    f = level_features(norm)
    return (stripped, norm, _task_bits(raw), f[0], f[1], f[2], f[3], f[4],
            sum(_SUFFIX_BIT[s] for s in f[5]), f[6])


def _ids(values, keep) -> np.ndarray:
    """Small integer ids of ``values`` (equal values, equal ids; -1 where ``keep`` is false)."""
    index: dict = {}
    return np.array([index.setdefault(v, len(index)) if k else -1 for v, k in zip(values, keep)])


def _bits(values, width: int) -> np.ndarray:
    """[len(values), width] booleans from integers' low ``width`` bits."""
    return (np.array(values, dtype=np.int64)[:, None] >> np.arange(width)) & 1 == 1


class _WordTable:
    """Per-word rule results of the distinct words of a labelling call, as arrays indexed by
    word id (the last id, ``len(words)``, is the padding of short components: not a word).

    valid [U+1]: non-empty once stripped; tasks [U+1, 4]; alpha, syntax, phon [U+1]; norm,
    stem, end [U+1]: ids of the normalised word, of its stem and of its final three letters
    (-1: none); end_ok [E + 1]: the ending is no suffix (last: padding); suffixes [U+1, S];
    bases [U+1, B]: norm ids of the words it may inflect (-1 padding)."""

    def __init__(self, words: Sequence[str]):
        (self.stripped, norms, tasks, alpha, syntax, phon, stems, ends, suffixes,
         bases) = map(list, zip(*map(word_row, [*words, ""])))
        norm_ids = {w: u for u, w in enumerate(dict.fromkeys(norms))}
        self.norms = list(norm_ids)                                  # id -> normalised word
        self.norm = np.array([norm_ids[w] for w in norms])
        self.valid = np.array([bool(w) for w in self.stripped])
        self.tasks = _bits(tasks, len(TASKS))
        self.alpha = np.array(alpha, dtype=bool)
        self.syntax = np.array(syntax, dtype=bool)
        self.phon = np.array(phon, dtype=bool)
        self.stem = _ids(stems, alpha)
        self.end = _ids(ends, ends)
        endings = dict.fromkeys(e for e in ends if e)                  # in id order
        self.end_ok = np.array([not overlaps_suffix(e) for e in endings] + [False])  # [E + 1]
        self.suffixes = _bits(suffixes, len(GROUP_SUFFIXES))
        base_ids = [[norm_ids[b] for b in bs if b in norm_ids] if bs else () for bs in bases]
        self.bases = np.full((len(base_ids), max(map(len, base_ids)) or 1), -1)
        for u, b in enumerate(base_ids):
            if b:
                self.bases[u, :len(b)] = b


def _equal_runs(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each position in ``mask`` of the rows of ``values`` [R, K]: how many positions of
    its row in ``mask`` hold the same value, and whether it is the leftmost of them (0 and
    False outside ``mask``). One stable sort per row instead of comparing every pair."""
    r, k = values.shape
    keyed = np.where(mask, values, values.max(initial=0) + 1 + np.arange(k))   # unique outside
    order = np.argsort(keyed, axis=1, kind="stable")
    ranked = np.take_along_axis(keyed, order, 1)
    starts = np.ones((r, k), dtype=bool)
    starts[:, 1:] = ranked[:, 1:] != ranked[:, :-1]
    run = np.cumsum(starts).reshape(r, k) - 1                       # runs never cross rows
    count, leftmost = np.empty((r, k), dtype=np.int64), np.empty((r, k), dtype=bool)
    np.put_along_axis(count, order, np.bincount(run.ravel())[run], 1)
    np.put_along_axis(leftmost, order, starts, 1)
    return np.where(mask, count, 0), leftmost & mask


class OfflineLabeller:
    """Rule-based labels from a component's top words; deterministic (N runs give N equal
    labels), no model, no network.

    Category: each word is evidence for a task when it (or its singular) is in that task's
    lexicon (:data:`CATEGORY_LEXICONS`) or matches the task's string heuristic (numbers and
    math symbols; identifier-like strings such as ``snake_case``, ``camelCase``, ``.py`` or
    code punctuation; accented or non-Latin words). The task with the largest share of evidence
    words wins when that share is at least ``min_share`` and at least ``min_hits`` words; else
    "none". Ties go to the task listed first in
    :data:`~tunescope.labels.concept_labels.CATEGORIES`.

    Level, over the normalised words (stripped, lower case; words empty once stripped are
    left out, and n counts the rest): each level's share is the number of its evidence words
    over n. Phonology: distinct sound words, short or vowel-less alphabetic fragments, and
    distinct words of groups of three or more alphabetic words sharing their final three
    letters (rhymes) where those letters are not a suffix, morphology evidence excluded.
    Morphology: distinct alphabetic words sharing a stem with another, inflecting another
    word of the component (make -> making, run -> running) or inflected by one, or in a group
    of at least max(3, round(15% of n)) distinct words sharing a suffix. Syntax: function words
    and punctuation (every occurrence). The level with the largest share wins when it is at
    least ``level_share``; otherwise the concept is semantic (content words). Ties go to
    phonology, then morphology, then syntax.

    The description names the category with its evidence count and first five evidence words,
    then the level with its first five evidence words (sorted for phonology and morphology).
    """

    name = "offline"

    def __init__(self, min_share: float = 0.1, min_hits: int = 2, level_share: float = 0.3):
        self.min_share, self.min_hits, self.level_share = min_share, min_hits, level_share

    def label_one(self, words: Sequence[str]) -> ConceptLabel:
        """The label of one component from its top ``words``."""
        return self.label_all([words])[0]

    def label(self, components: list[list[str]], runs: int = 1) -> list[list[ConceptLabel]]:
        """Per component, ``runs`` identical labels (see the class docstring)."""
        return [[lab] * runs for lab in self.label_all(components)]

    def label_all(self, components: Sequence[Sequence[str]]) -> list[ConceptLabel]:
        """One label per component (its top words, most related first)."""
        with gc_pause.paused():
            return self._label_all(components)

    def _label_all(self, components: Sequence[Sequence[str]]) -> list[ConceptLabel]:
        flat = [w for words in components for w in words]
        codes, vocab = pd.factorize(np.array(flat, dtype=object))         # ids in first order
        table = _WordTable(list(vocab))
        sizes = np.array([len(words) for words in components], dtype=np.int64)
        ids = np.full((len(components), max(sizes.max(initial=0), 1)), len(vocab))  # padding
        ids[np.arange(ids.shape[1]) < sizes[:, None]] = codes
        labels = []
        for start in range(0, len(components), _ROWS):
            labels += self._label_ids(table, ids[start:start + _ROWS])
        return labels

    def _label_ids(self, t: _WordTable, ids: np.ndarray) -> list[ConceptLabel]:
        """Labels of the components ``ids`` [R, K] (word ids of ``t``)."""
        valid = t.valid[ids]                                                 # [R, K]
        n = np.maximum(valid.sum(1), 1)                                      # [R]
        tasks = t.tasks[ids] & valid[:, :, None]                             # [R, K, T]
        hits = tasks.sum(1)                                                  # [R, T]
        best = hits.argmax(1)                                                # first of a tie
        count = hits[np.arange(len(ids)), best]
        is_task = (count >= self.min_hits) & (count / n >= self.min_share)

        norm = np.where(valid, t.norm[ids], -1)
        first = _equal_runs(norm, valid)[1]                                  # distinct words
        alpha = t.alpha[ids] & valid
        distinct = alpha & first
        by_stem = _equal_runs(t.stem[ids], distinct)[0] >= 2
        suffixes = t.suffixes[ids] & distinct[:, :, None]                    # [R, K, S]
        min_group = np.maximum(3, np.round(0.15 * n))
        grouped = (suffixes & (suffixes.sum(1) >= min_group[:, None])[:, None, :]).any(2)
        inflects, inflected = self._inflections(t, ids, norm, distinct)
        morph = distinct & (by_stem | grouped | inflects | inflected)
        end = np.where(alpha, t.end[ids], -1)
        rhyme = ((end >= 0) & t.end_ok[np.maximum(end, 0)]
                 & (_equal_runs(end, alpha & (end >= 0))[0] >= 3))
        phon = first & (t.phon[ids] | (rhyme & ~morph))
        syntax = t.syntax[ids] & valid
        shares = np.stack([phon.sum(1), morph.sum(1), syntax.sum(1)], 1) / n[:, None]
        top = shares.argmax(1)                                               # first of a tie
        is_level = shares[np.arange(len(ids)), top] >= self.level_share
        evidence = (phon, morph, syntax)                                     # _LEVEL_ORDER

        labels = []
        for r in range(len(ids)):
            category = TASKS[best[r]] if is_task[r] else "none"
            level = _LEVEL_ORDER[top[r]] if is_level[r] else "semantics"
            description = category
            if is_task[r] and count[r]:
                words = [t.stripped[u] for u in ids[r, tasks[r, :, best[r]]][:5]]
                description += f" ({count[r]}/{n[r]}: {', '.join(words)})"
            description += f"; {level}"
            if is_level[r]:
                found = [t.norms[i] for i in norm[r, evidence[top[r]][r]]]
                found = found if top[r] == 2 else sorted(found)
                description += f" ({', '.join(found[:5])})" if found else ""
            labels.append(ConceptLabel(category, level, description))
        return labels

    @staticmethod
    def _inflections(t: _WordTable, ids: np.ndarray, norm: np.ndarray, distinct: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
        """[R, K] twice: the distinct alphabetic words that inflect another word of their
        component, and those that another word inflects. Each (component, norm id) pair is
        one integer key, so membership is a sorted search."""
        offset = np.arange(len(ids))[:, None] * len(t.norms)                # [R, 1]
        keys = offset + norm                                                 # [R, K]
        present = np.sort(keys[distinct])                 # distinct: each key once per row
        bases = t.bases[ids]                                                 # [R, K, B]
        asks = (bases >= 0) & distinct[:, :, None]
        base_keys = (offset[:, :, None] + bases)[asks]
        found = _isin_sorted(base_keys, present)
        inflects = np.zeros(asks.shape, dtype=bool)
        inflects[asks] = found
        inflected = distinct.copy()
        inflected[distinct] = _isin_sorted(keys[distinct], np.unique(base_keys[found]))
        return inflects.any(2), inflected


def _isin_sorted(values: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """Whether each of ``values`` is in ``sorted_keys`` (ascending), by binary search."""
    if not len(sorted_keys):
        return np.zeros(values.shape, dtype=bool)
    at = np.searchsorted(sorted_keys, values).clip(max=len(sorted_keys) - 1)
    return sorted_keys[at] == values
