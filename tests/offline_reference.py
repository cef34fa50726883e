"""The offline labeller's rules one component at a time, in plain Python: the reference that the
vectorised :class:`tunescope.labels.offline_labeller.OfflineLabeller` must agree with label
for label (this is the implementation it replaced, per-word rules included)."""

from __future__ import annotations

import functools
import re
from collections import defaultdict

from tunescope.labels.concept_labels import ConceptLabel
from tunescope.labels.offline_labeller import (CATEGORY_LEXICONS, FUNCTION_WORDS,
                                                 PHONOLOGY_WORDS, SUFFIXES)

_GROUP_SUFFIXES = tuple(s for s in SUFFIXES if len(s) >= 2 and s not in ("es", "er", "al"))
_VOWELS = frozenset("aeiouy")
_MATH_SYMBOLS = set("+-*/=^%<>≤≥±×÷√π∑∫∞")
_CODE_MARKS = ("_", "()", "{", "}", "[]", "=>", "->", "::", "==", "!=", ";", "#", "</", "/>", "$")


def _norm(word: str) -> str:
    return word.strip().lower()


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A crude stem: ``word`` without one common suffix (or a final "e"), kept >= 3 letters."""
    for suffix in ("ational", "ations", "ation", "ically", "ical", "ics", "ings", "ing", "ions",
                   "ion", "ors", "or", "ers", "er", "ed", "es", "ly", "ic", "al", "s", "e"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[:-len(suffix)]
    return word


def _is_number(w: str) -> bool:
    return bool(re.fullmatch(r"[-+]?\d+([.,]\d+)*%?", w))


def _category_hit(category: str, raw: str) -> bool:
    """Whether the word ``raw`` is evidence for ``category``."""
    w = _norm(raw)
    if not w:
        return False
    lexicon = CATEGORY_LEXICONS[category]
    if w in lexicon or (w.endswith("s") and w[:-1] in lexicon) or (
            w.endswith("es") and w[:-2] in lexicon):
        return True
    if category == "math":
        return _is_number(w) or (all(c in _MATH_SYMBOLS for c in w))
    if category == "coding":
        s = raw.strip()
        return (any(m in s for m in _CODE_MARKS) and any(c.isalpha() for c in s)) or bool(
            re.fullmatch(r"[a-z]+[A-Z]\w*|\.[a-z]{1,4}", s))
    if category == "translation":
        return any(c.isalpha() and not c.isascii() for c in w)
    return False


@functools.lru_cache(maxsize=262144)
def _word_info(raw: str) -> tuple[str, str, tuple[str, ...]]:
    """``raw`` stripped, normalised, and the tasks of :data:`CATEGORY_LEXICONS` it is evidence
    for, in order (cached: a vocabulary's words recur across components)."""
    return raw.strip(), _norm(raw), tuple(c for c in CATEGORY_LEXICONS if _category_hit(c, raw))


def _inflection_bases(word: str) -> tuple[str, ...]:
    """Words that ``word`` may inflect: ``word`` without one of :data:`SUFFIXES` (base kept
    >= 3 letters), that base plus "e", or the base with a doubled final letter undone."""
    out = []
    for suffix in SUFFIXES:
        if not word.endswith(suffix) or len(word) - len(suffix) < 3:
            continue
        base = word[:-len(suffix)]
        for a in (base, base + "e", base[:-1] if base[-1] == base[-2] else None):
            if a and a != word:
                out.append(a)
    return tuple(out)


def _group_suffixes_of(word: str) -> tuple[str, ...]:
    """The suffixes of :data:`_GROUP_SUFFIXES` that ``word`` ends in (stem kept >= 3 letters)."""
    return tuple(s for s in _GROUP_SUFFIXES if word.endswith(s) and len(word) - len(s) >= 3)


@functools.lru_cache(maxsize=4096)
def _overlaps_suffix(end: str) -> bool:
    return any(end.endswith(s) or s.endswith(end) for s in _GROUP_SUFFIXES)


@functools.lru_cache(maxsize=262144)
def _level_features(w: str) -> tuple:
    """What one normalised word contributes to :func:`_level_scores`: (alphabetic, syntax
    evidence, phonology evidence by itself, stem, final three letters ("" unless alphabetic
    with >= 4 letters), group suffixes, inflection bases); cached like :func:`_word_info`."""
    alpha = w.isalpha()
    syntax = w in FUNCTION_WORDS or (bool(w) and not any(c.isalnum() for c in w))
    phon = w in PHONOLOGY_WORDS or (alpha and w not in FUNCTION_WORDS and (
        len(w) <= 2 or (len(w) <= 4 and not set(w) & _VOWELS)))
    if not alpha:
        return False, syntax, phon, "", "", (), ()
    return (True, syntax, phon, stem(w), w[-3:] if len(w) >= 4 else "", _group_suffixes_of(w),
            _inflection_bases(w))


def _level_scores(words: list[str]) -> dict[str, tuple[float, list[str]]]:
    """Share of ``words`` (normalised) that are evidence for phonology, morphology and syntax,
    with the evidence words.

    Morphology: alphabetic words sharing a stem, a word of the set inflecting another
    (make -> making, run -> running), or a group of at least max(3, 15% of the words) sharing
    a suffix. Phonology: sound words, short or vowel-less alphabetic fragments, and groups of
    three or more words sharing their final three letters (rhymes) where those letters are not
    a suffix, morphology evidence excluded. Syntax: function words and punctuation."""
    n = max(len(words), 1)
    feats = [(w, _level_features(w)) for w in words]
    syntax = [w for w, f in feats if f[1]]
    phon = {w for w, f in feats if f[2]}
    alpha = [(w, f) for w, f in feats if f[0]]
    alpha_set = {w for w, _ in alpha}
    morph: set[str] = set()
    by_stem, groups, endings = defaultdict(set), defaultdict(set), defaultdict(list)
    for w, f in alpha:
        by_stem[f[3]].add(w)
        for suffix in f[5]:
            groups[suffix].add(w)
        if f[4]:
            endings[f[4]].append(w)
        for base in f[6]:
            if base in alpha_set:
                morph |= {base, w}
    min_group = max(3, round(0.15 * n))
    for group in by_stem.values():
        if len(group) >= 2:
            morph |= group
    for group in groups.values():
        if len(group) >= min_group:
            morph |= group
    for end, ending_words in endings.items():
        if len(ending_words) >= 3 and not _overlaps_suffix(end):
            phon |= {w for w in ending_words if w not in morph}
    return {"phonology": (len(phon) / n, sorted(phon)),
            "morphology": (len(morph) / n, sorted(morph)),
            "syntax": (len(syntax) / n, syntax)}


def reference_label(words, min_share=0.1, min_hits=2, level_share=0.3) -> ConceptLabel:
    """The label of one component from its top ``words``."""
    infos = [_word_info(w) for w in words]
    infos = [info for info in infos if info[0]]
    n = max(len(infos), 1)
    hits: dict[str, list[str]] = {c: [] for c in CATEGORY_LEXICONS}
    for stripped, _, categories in infos:
        for c in categories:
            hits[c].append(stripped)
    best = max(CATEGORY_LEXICONS, key=lambda c: len(hits[c]))
    count = len(hits[best])
    category = best if count >= min_hits and count / n >= min_share else "none"
    scores = _level_scores([info[1] for info in infos])
    top_level = max(("phonology", "morphology", "syntax"), key=lambda lv: scores[lv][0])
    level = top_level if scores[top_level][0] >= level_share else "semantics"
    evidence = hits[best] if category != "none" else []
    level_evidence = scores[level][1] if level != "semantics" else []
    description = f"{category}" + (f" ({count}/{n}: {', '.join(evidence[:5])})" if evidence
                                    else "")
    description += f"; {level}" + (f" ({', '.join(level_evidence[:5])})" if level_evidence
                                   else "")
    return ConceptLabel(category, level, description)
