"""An independent oracle for the offline concept labeller (docs/methods.md#w3), written from its
documentation, not from its code.

Sources of the rule: the docstrings of :mod:`tunescope.labels.offline_labeller` (module,
``OfflineLabeller``, ``word_tasks``, ``stem``, ``inflection_bases``, ``overlaps_suffix``,
``level_features``) and docs/methods.md, section W3, "Offline labeller". The oracle labels one
component at a time by brute force: for every task and every level it walks the words with
plain loops, sets and dicts, and it decides every threshold with exact fractions. It shares no
function with the labeller.

What it shares with the labeller, and why
-----------------------------------------
Only data tables, because the rule is defined by them and restating them would only let the two
copies drift apart:

- the public word lists ``CATEGORY_LEXICONS``, ``FUNCTION_WORDS``, ``PHONOLOGY_WORDS`` and the
  suffix lists ``SUFFIXES`` and ``GROUP_SUFFIXES`` (the documented evidence tables);
- three private tables that the documentation names but does not list: the math symbols
  (``_MATH_SYMBOLS``), the code punctuation (the alternatives of the ``_CODE_MARKS`` pattern,
  read back as plain strings and searched here with ``in``, no regular expression) and the
  stem suffixes (``_STEM_SUFFIXES``, used here as a set: the oracle takes the longest one that
  fits), plus the vowel set ``_VOWELS`` that defines "vowel-less".

Nothing else is imported from ``tunescope.labels``: the tie order of the tasks and levels, the
normalisation, the number / camelCase / file-extension shapes, stems, inflection bases, suffix
groups, rhymes, shares, thresholds and the description are all re-derived below. The oracle
returns plain tuples, not ``ConceptLabel``s.

The rule as a specification
---------------------------
A component is a list of words (most related first). Each word is *stripped* (``str.strip``)
and *normalised* (stripped, lower case). Words empty once stripped are left out; n counts
every other word, repeats included.

Category. A word is evidence for a task when its normalised form, or that form without a final
"s" or a final "es", is in the task's lexicon, or it has the task's string shape:

- math: a number (an optional sign, decimal digits in groups joined by single "." or ",",
  an optional final "%"), or a string of math symbols only;
- coding: a code mark in the (stripped) word together with a letter anywhere in it, a
  camelCase word (ASCII lower-case letters, one ASCII capital, then word characters), or a
  file extension ("." and one to four ASCII lower-case letters);
- translation: a non-ASCII letter in the normalised word.

Every occurrence counts. The task with the most evidence words wins (ties: writing, math,
coding, translation) when it has at least ``min_hits`` words and a share of at least
``min_share`` of n; otherwise the category is "none".

Level (over the normalised words):

- phonology: distinct words that are sound words, or alphabetic non-function words of at most
  two letters, or of at most four letters with no vowel; and distinct alphabetic words in a
  rhyme group (three or more alphabetic words of at least four letters, occurrences counted,
  with the same final three letters, where those letters are not part of a group suffix: they
  neither end with one nor are the end of one), unless the word is morphology evidence;
- morphology: distinct alphabetic words that share a stem with another distinct alphabetic
  word, that inflect one (it is among their inflection bases) or are inflected by one, or that
  belong to a group of at least max(3, round(0.15 n)) distinct alphabetic words ending in one
  group suffix (with at least three letters before it); ``round`` is Python's, half to even;
- syntax: every occurrence of a function word or of punctuation (a non-empty word with no
  letter or digit).

Each level's share is its count over n (0 for an empty component). The largest share wins
(ties: phonology, morphology, syntax) when it is at least ``level_share``; else "semantics".

Description: the category, then, when it is a task with evidence, " (count/n: w1, ..., w5)"
with its first five evidence words as stripped; then "; " and the level, then, when it is not
"semantics" and has evidence, " (v1, ..., v5)": the first five of its evidence words, sorted for
phonology and morphology, in order of occurrence for syntax.
"""

from __future__ import annotations

import functools
import re
from fractions import Fraction

from tunescope.labels import offline_labeller as _tables

# ---- the shared data tables (see the module docstring) ---------------------------------------
LEXICONS = _tables.CATEGORY_LEXICONS
FUNCTION_WORDS = _tables.FUNCTION_WORDS
SOUND_WORDS = _tables.PHONOLOGY_WORDS
INFLECTION_SUFFIXES = _tables.SUFFIXES
GROUP_SUFFIXES = _tables.GROUP_SUFFIXES
MATH_SYMBOLS = frozenset(_tables._MATH_SYMBOLS)
CODE_MARKS = tuple(re.sub(r"\\(.)", r"\1", alt) for alt in _tables._CODE_MARKS.pattern.split("|"))
STEM_ENDINGS = frozenset(_tables._STEM_SUFFIXES)
VOWELS = frozenset(_tables._VOWELS)

# ---- re-derived from the documentation -------------------------------------------------------
TASK_ORDER = ["writing", "math", "coding", "translation"]       # docs/methods.md: tie order
LEVEL_ORDER = ["phonology", "morphology", "syntax"]             # docstring: tie order
ASCII_LOWER = "abcdefghijklmnopqrstuvwxyz"
ASCII_UPPER = ASCII_LOWER.upper()


# ---- one word: tasks --------------------------------------------------------------------------

def looks_like_number(text: str) -> bool:
    """Sign? digits ([.,] digits)* %? -- scanned character by character."""
    chars = list(text)
    if chars and chars[-1] == "%":
        chars.pop()
    if chars and chars[0] in "+-":
        chars.pop(0)
    if not chars:
        return False
    groups = [[]]
    for c in chars:
        if c in ".,":
            groups.append([])
        elif c.isdecimal():
            groups[-1].append(c)
        else:
            return False
    return all(len(g) > 0 for g in groups)


def looks_like_camel_case(text: str) -> bool:
    lower_run = 0
    while lower_run < len(text) and text[lower_run] in ASCII_LOWER:
        lower_run += 1
    if lower_run == 0 or lower_run == len(text) or text[lower_run] not in ASCII_UPPER:
        return False
    rest = text[lower_run + 1:]
    return all(c == "_" or c.isalnum() for c in rest)


def looks_like_extension(text: str) -> bool:
    if not text.startswith("."):
        return False
    letters = text[1:]
    return 1 <= len(letters) <= 4 and all(c in ASCII_LOWER for c in letters)


@functools.cache
def oracle_word_tasks(raw: str) -> tuple[str, ...]:
    """The tasks (in tie order) that the word ``raw`` is evidence for."""
    stripped = raw.strip()
    low = stripped.lower()
    if low == "":
        return ()
    forms = [low]
    if low.endswith("s"):
        forms.append(low[:-1])
    if low.endswith("es"):
        forms.append(low[:-2])
    found = []
    for task in TASK_ORDER:
        hit = False
        for form in forms:
            if form in LEXICONS[task]:
                hit = True
        if task == "math":
            if looks_like_number(low):
                hit = True
            if all(c in MATH_SYMBOLS for c in low):
                hit = True
        if task == "coding":
            has_letter = False
            for c in stripped:
                if c.isalpha():
                    has_letter = True
            has_mark = False
            for mark in CODE_MARKS:
                if mark in stripped:
                    has_mark = True
            if has_mark and has_letter:
                hit = True
            if looks_like_camel_case(stripped) or looks_like_extension(stripped):
                hit = True
        if task == "translation":
            for c in low:
                if c.isalpha() and not c.isascii():
                    hit = True
        if hit:
            found.append(task)
    return tuple(found)


# ---- one word: level evidence -----------------------------------------------------------------

@functools.cache
def oracle_stem(word: str) -> str:
    """``word`` without the longest stem ending that leaves at least three letters."""
    best = ""
    for ending in STEM_ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= 3 and len(ending) > len(best):
            best = ending
    return word[:len(word) - len(best)] if best else word


@functools.cache
def oracle_inflection_bases(word: str) -> frozenset[str]:
    """Every word that ``word`` may inflect (see the module docstring)."""
    bases = set()
    for suffix in INFLECTION_SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            root = word[:len(word) - len(suffix)]
            bases.add(root)
            bases.add(root + "e")
            if root[-1] == root[-2]:
                bases.add(root[:-1])
    bases.discard(word)
    return frozenset(bases)


@functools.cache
def oracle_group_suffixes(word: str) -> frozenset[str]:
    return frozenset(s for s in GROUP_SUFFIXES if word.endswith(s) and len(word) - len(s) >= 3)


def oracle_ending(word: str) -> str:
    """The final three letters of an alphabetic word of four letters or more, else ""."""
    return word[-3:] if word.isalpha() and len(word) >= 4 else ""


@functools.cache
def ending_is_suffix_like(end: str) -> bool:
    for s in GROUP_SUFFIXES:
        if end.endswith(s) or s.endswith(end):
            return True
    return False


@functools.cache
def is_syntax_word(w: str) -> bool:
    if w in FUNCTION_WORDS:
        return True
    return w != "" and not any(c.isalnum() for c in w)


@functools.cache
def is_sound_word(w: str) -> bool:
    """Phonology evidence by itself: a sound word or a short / vowel-less fragment."""
    if w in SOUND_WORDS:
        return True
    if not w.isalpha() or w in FUNCTION_WORDS:
        return False
    if len(w) <= 2:
        return True
    return len(w) <= 4 and all(c not in VOWELS for c in w)


# ---- one component ----------------------------------------------------------------------------

def _share_at_least(count: int, n: int, threshold: float) -> bool:
    share = Fraction(count, n) if n else Fraction(0)
    return share >= Fraction(repr(float(threshold)))


def oracle_label(words, min_share=0.1, min_hits=2, level_share=0.3) -> tuple[str, str, str]:
    """(category, level, description) of one component from its top ``words``."""
    kept = [(w.strip(), w.strip().lower(), w) for w in words if w.strip() != ""]
    n = len(kept)

    # category: brute force over every task
    evidence = {task: [] for task in TASK_ORDER}
    for stripped, _low, raw in kept:
        tasks = oracle_word_tasks(raw)
        for task in TASK_ORDER:
            if task in tasks:
                evidence[task].append(stripped)
    winner = TASK_ORDER[0]
    for task in TASK_ORDER[1:]:
        if len(evidence[task]) > len(evidence[winner]):
            winner = task
    hits = len(evidence[winner])
    is_task = hits >= min_hits and _share_at_least(hits, n, min_share)
    category = winner if is_task else "none"

    # level: brute force over every level
    lows = [low for _s, low, _r in kept]
    distinct = []
    for w in lows:
        if w not in distinct:
            distinct.append(w)
    alphabetic = [w for w in distinct if w.isalpha()]

    morph = set()
    for w in alphabetic:
        for v in alphabetic:
            if v == w:
                continue
            if oracle_stem(v) == oracle_stem(w):
                morph.add(w)
            if v in oracle_inflection_bases(w):         # w inflects v
                morph.add(w)
            if w in oracle_inflection_bases(v):         # v inflects w
                morph.add(w)
    min_group = max(3, round(Fraction(15, 100) * n))
    for suffix in GROUP_SUFFIXES:
        members = [w for w in alphabetic if suffix in oracle_group_suffixes(w)]
        if len(members) >= min_group:
            morph.update(members)

    ending_counts = {}
    for w in lows:
        end = oracle_ending(w)
        if end:
            ending_counts[end] = ending_counts.get(end, 0) + 1
    phon = set()
    for w in distinct:
        if is_sound_word(w):
            phon.add(w)
        end = oracle_ending(w)
        if (end and ending_counts[end] >= 3 and not ending_is_suffix_like(end)
                and w not in morph):
            phon.add(w)

    syntax = [w for w in lows if is_syntax_word(w)]

    level_evidence = {"phonology": sorted(phon), "morphology": sorted(morph), "syntax": syntax}
    top = LEVEL_ORDER[0]
    for lv in LEVEL_ORDER[1:]:
        if len(level_evidence[lv]) > len(level_evidence[top]):
            top = lv
    is_level = _share_at_least(len(level_evidence[top]), n, level_share)
    level = top if is_level else "semantics"

    description = category
    if is_task and hits > 0:
        description = f"{category} ({hits}/{n}: " + ", ".join(evidence[winner][:5]) + ")"
    description += "; " + level
    if is_level and level_evidence[top]:
        description += " (" + ", ".join(level_evidence[top][:5]) + ")"
    return category, level, description
