"""Deterministic, meaning-preserving perturbations of a text (C3's "typo", "casing" and
"synonym" kinds).

All three functions are pure: the same ``(text, seed)`` always gives the same result. The
results of :func:`typo` and :func:`recase` always differ from ``text``; :func:`synonym_swap`
returns ``text`` unchanged when no word of its table occurs in it. They build the stored
perturbations of the built-in sentiment task and the perturbations
:func:`tunescope.data.tasks.hf_task` adds to hub data.

Neither typos nor synonym swaps touch negation words ("not", "never", "nothing", contractions
such as "don't", ...), and a synonym swap keeps a word's polarity, so neither can flip the
meaning of a sentence.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable

NEGATIONS = frozenset({
    "no", "not", "nor", "never", "none", "nobody", "nothing", "nowhere", "neither", "cannot",
    "without", "hardly", "barely", "scarcely", "rarely", "seldom", "nope", "nay",
})
"""Words a typo never touches, nor produces (lower case)."""

_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _keyboard_neighbours() -> dict[str, str]:
    """Letter -> the letters around it on a QWERTY keyboard."""
    out = {}
    for r, row in enumerate(_KEYBOARD_ROWS):
        for c, ch in enumerate(row):
            near = [row[i] for i in (c - 1, c + 1) if 0 <= i < len(row)]
            for other in (r - 1, r + 1):
                if 0 <= other < len(_KEYBOARD_ROWS):
                    near += [_KEYBOARD_ROWS[other][i] for i in (c - 1, c, c + 1)
                             if 0 <= i < len(_KEYBOARD_ROWS[other])]
            out[ch] = "".join(near)
    return out


_NEIGHBOURS = _keyboard_neighbours()

# Whole alphabetic words, not part of a contraction ("don't") or of a token with digits.
_WORD = re.compile(r"(?<![\w'’])[A-Za-z]+(?![\w'’])")


def _typo_candidates(word: str, rng: random.Random) -> list[str]:
    """Every one-typo variant of ``word`` (first and last letters kept), in a seeded order.

    The kinds of typo come in a shuffled order (so each is about equally likely to be used),
    the variants of each kind shuffled too.
    """
    kinds: dict[str, list[str]] = {"swap": [], "delete": [], "double": [], "key": []}
    for i in range(1, len(word) - 1):
        if i < len(word) - 2 and word[i] != word[i + 1]:
            kinds["swap"].append(word[:i] + word[i + 1] + word[i] + word[i + 2:])
        if len(word) >= 5:
            kinds["delete"].append(word[:i] + word[i + 1:])
        kinds["double"].append(word[:i] + word[i] + word[i:])
        for ch in _NEIGHBOURS.get(word[i].lower(), ""):
            kinds["key"].append(word[:i] + (ch.upper() if word[i].isupper() else ch)
                                + word[i + 1:])
    order = list(kinds)
    rng.shuffle(order)
    out = []
    for kind in order:
        variants = sorted(set(kinds[kind]))
        rng.shuffle(variants)
        out += variants
    return list(dict.fromkeys(o for o in out if o != word))


def typo(text: str, seed: int = 0, max_typos: int = 2, avoid: Iterable[str] = ()) -> str:
    """``text`` with one or two character-level typos, chosen deterministically by ``seed``.

    Typos go into alphabetic words of four letters or more (shorter words as a fallback),
    never into negation words (:data:`NEGATIONS`) or contractions. A typo is one of: two
    adjacent inner letters swapped, an inner letter dropped, an inner letter doubled, or an
    inner letter replaced by a neighbouring key; first and last letters stay. The number of
    typos is 1 or 2 (at most ``max_typos``).

    A typo must not produce a real word, which could change the meaning ("came" -> "cake"):
    the result is never a negation, a word of ``text`` itself, or a word in ``avoid`` (a
    vocabulary, compared in lower case). Pass a vocabulary to make this thorough.
    """
    rng = random.Random(f"typo:{seed}:{text}")
    banned = NEGATIONS | {w.lower() for w in avoid} | {m.group().lower()
                                                       for m in _WORD.finditer(text)}
    words = [m for m in _WORD.finditer(text) if m.group().lower() not in NEGATIONS]
    candidates = [m for m in words if len(m.group()) >= 4] or [m for m in words
                                                                if len(m.group()) >= 3]
    rng.shuffle(candidates)
    n = rng.randint(1, max(1, max_typos))
    chosen: dict[int, tuple[int, str]] = {}
    for m in candidates:
        if len(chosen) >= n:
            break
        fixed = next((t for t in _typo_candidates(m.group(), rng) if t.lower() not in banned),
                     None)
        if fixed is not None:
            chosen[m.start()] = (m.end(), fixed)
    if not chosen:  # no word of three letters or more: double the last letter of a short one
        short = [m for m in words if len(m.group()) == 2]
        if not short:
            return text + "." if text[-1:].isalnum() or not text else text + text[-1]
        m = short[-1]
        return text[:m.end()] + m.group()[-1] + text[m.end():]
    out, pos = [], 0
    for start in sorted(chosen):
        end, fixed = chosen[start]
        out += [text[pos:start], fixed]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _strip_final(text: str) -> str:
    return re.sub(r"[.!?]+(\s*)$", r"\1", text)


_RECASINGS = (
    ("lower", str.lower),
    ("upper", str.upper),
    ("lower, no final punctuation", lambda t: _strip_final(t).lower()),
    ("no punctuation", lambda t: re.sub(r"\s+", " ", re.sub(r"[,;:.!?]", "", t)).strip()),
    ("first letter lower, no final punctuation",
     lambda t: (lambda s: s[:1].lower() + s[1:])(_strip_final(t))),
)
"""The casing/punctuation changes :func:`recase` picks from, in the order it tries them."""


def recase(text: str, seed: int = 0) -> str:
    """``text`` with its casing and/or punctuation changed, chosen deterministically by ``seed``.

    One of: all lower case; all upper case; lower case without final punctuation; commas and
    sentence punctuation removed; first letter lower-cased and final punctuation dropped. The
    seed picks the first change to try; the first one that alters the text is used (a text that
    none alters, e.g. ``"42"``, gets a final full stop).
    """
    rng = random.Random(f"recase:{seed}:{text}")
    start = rng.randrange(len(_RECASINGS))
    for k in range(len(_RECASINGS)):
        out = _RECASINGS[(start + k) % len(_RECASINGS)][1](text)
        if out != text and out.strip():
            return out
    return text + "."


# Each group maps a lower-case word to near-synonyms of the same part of speech and the same
# meaning in a review. Rule of the table: a word only ever maps to words of its own group,
# NEUTRAL (no sentiment of its own), POSITIVE or NEGATIVE, so a swap never changes a
# sentence's polarity; no key or value is a negation word (:data:`NEGATIONS`) or holds one
# ("n't"); words whose sense or polarity depends on context ("cheap", "light", "hard", "very"
# as in "the very first", "slow" as in "the watch runs slow", "good" whose near-synonyms are
# weaker) are left out.
_NEUTRAL_SYNONYMS = {
    "film": ("movie",), "films": ("movies",), "movie": ("film",), "movies": ("films",),
    "story": ("narrative",), "plot": ("storyline",), "ending": ("finale",),
    "script": ("screenplay",), "director": ("filmmaker",), "actor": ("performer",),
    "actress": ("performer",), "jokes": ("gags",), "joke": ("gag",), "villain": ("antagonist",),
    "audience": ("viewers",), "visuals": ("imagery",), "theater": ("cinema",),
    "chemistry": ("rapport",), "copy": ("imitation",), "kids": ("children",),
    "every": ("each",), "whole": ("entire",), "really": ("truly",), "genuinely": ("truly",),
    "absolutely": ("truly",), "extremely": ("incredibly",), "incredibly": ("extremely",),
    "quickly": ("rapidly",), "constantly": ("continually",), "exactly": ("precisely",),
    "definitely": ("certainly",), "clearly": ("evidently",), "surprisingly": ("unexpectedly",),
    "ridiculously": ("absurdly",), "deeply": ("profoundly",), "started": ("began",),
    "seems": ("appears",), "seemed": ("appeared",), "happens": ("occurs",),
    "happening": ("occurring",), "asked": ("requested",), "charged": ("billed",),
    "found": ("discovered",), "answered": ("replied to",), "worked": ("functioned",),
    "working": ("functioning",), "buy": ("purchase",), "arrived": ("came",),
    "item": ("product",), "package": ("parcel",), "parts": ("pieces",), "trip": ("journey",),
    "delivery": ("shipping",), "photos": ("pictures",), "instructions": ("directions",),
    "fabric": ("material",), "pockets": ("compartments",), "plenty": ("lots",),
    "counter": ("countertop",), "restaurant": ("eatery",), "waiter": ("server",),
    "server": ("waiter",), "staff": ("employees",), "chef": ("cook",),
    "owners": ("proprietors",), "options": ("choices",), "atmosphere": ("ambience",),
    "neighborhood": ("area",), "harbor": ("port",), "loud": ("noisy",), "noisy": ("loud",),
    "fast": ("quick",), "small": ("little",), "easy": ("simple",),
    "difficult": ("challenging",), "packed": ("crowded",), "empty": ("deserted",),
    "wrong": ("incorrect",), "lost": ("misplaced",), "torn": ("ripped",),
    "within": ("in",), "random": ("arbitrary",), "young": ("youthful",),
    "written": ("penned",), "stitched": ("sewn",), "owned": ("had",), "video": ("clip",),
    "evenly": ("uniformly",), "coldest": ("chilliest",), "middle": ("center",),
    "drinks": ("beverages",), "zipper": ("zip",), "says": ("states",),
    "snapped": ("broke",),
}
_POSITIVE_SYNONYMS = {
    "great": ("excellent",), "excellent": ("superb",), "superb": ("excellent",),
    "wonderful": ("marvelous",), "amazing": ("incredible",), "fantastic": ("terrific",),
    "gorgeous": ("stunning",), "stunning": ("gorgeous",), "beautiful": ("lovely",),
    "lovely": ("beautiful",), "delicious": ("tasty",), "tasty": ("delicious",),
    "funny": ("amusing",), "clever": ("smart",), "smart": ("clever",),
    "charming": ("delightful",), "delightful": ("charming",), "talented": ("gifted",),
    "moving": ("touching",), "touching": ("moving",), "gripping": ("riveting",),
    "inspiring": ("uplifting",), "heartfelt": ("sincere",), "honest": ("sincere",),
    "comfortable": ("comfy",), "durable": ("sturdy",), "sturdy": ("durable",),
    "reliable": ("dependable",), "generous": ("ample",), "friendly": ("welcoming",),
    "spotless": ("immaculate",), "perfect": ("flawless",), "perfectly": ("flawlessly",),
    "happily": ("gladly",), "politely": ("courteously",), "elegant": ("stylish",),
    "vivid": ("vibrant",), "crisp": ("crunchy",), "crispy": ("crunchy",),
    "juicy": ("succulent",), "creative": ("inventive",), "love": ("adore",),
    "loves": ("adores",), "adore": ("love",), "best": ("finest",), "natural": ("authentic",),
}
_NEGATIVE_SYNONYMS = {
    "awful": ("terrible",), "terrible": ("awful",), "bad": ("poor",), "poor": ("bad",),
    "boring": ("dull",), "dull": ("boring",), "annoying": ("irritating",),
    "annoyed": ("irritated",), "confusing": ("baffling",), "forgettable": ("unmemorable",),
    "disappointing": ("underwhelming",), "useless": ("worthless",), "rude": ("impolite",),
    "dirty": ("filthy",), "damaged": ("broken",), "tasteless": ("bland",),
    "bland": ("tasteless",), "soggy": ("mushy",), "mushy": ("soggy",), "greasy": ("oily",),
    "tiny": ("minuscule",), "expensive": ("pricey",), "sick": ("ill",), "wilted": ("limp",),
    "painfully": ("excruciatingly",), "unfinished": ("incomplete",),
    "choppy": ("disjointed",), "poorly": ("badly",), "lukewarm": ("tepid",),
    "nightmare": ("ordeal",), "burnt": ("charred",), "underwhelming": ("disappointing",),
    "rancid": ("spoiled",), "dizzy": ("lightheaded",), "flimsy": ("fragile",),
}
SYNONYM_GROUPS = {"neutral": _NEUTRAL_SYNONYMS, "positive": _POSITIVE_SYNONYMS,
                  "negative": _NEGATIVE_SYNONYMS}
"""The synonym table of :func:`synonym_swap` by polarity group (see the rule above)."""
SYNONYMS = {word: subs for group in SYNONYM_GROUPS.values() for word, subs in group.items()}
"""Lower-case word -> its synonyms (the groups of :data:`SYNONYM_GROUPS` merged)."""


def _cased(word: str, like: str) -> str:
    """``word`` in the casing of ``like`` (all capitals, capitalised, or as is)."""
    if like.isupper() and len(like) > 1:
        return word.upper()
    return word[:1].upper() + word[1:] if like[:1].isupper() else word


# Whole words as in _WORD, and not part of a hyphenated compound ("heavy-handed").
_WHOLE_WORD = re.compile(r"(?<![\w'’-])[A-Za-z]+(?![\w'’-])")
_ARTICLE = re.compile(r"(?<![\w'’])(an?)(\s+)$", re.IGNORECASE)


def synonym_swap(text: str, seed: int = 0, max_swaps: int = 2) -> str:
    """``text`` with one or two words replaced by synonyms, chosen deterministically by ``seed``.

    Candidates are the whole words of ``text`` (not parts of contractions or of hyphenated
    compounds) found in
    :data:`SYNONYMS`, a small hand-written table that keeps each word's polarity (a neutral word
    maps to a neutral one, a positive to a positive, a negative to a negative) and never touches
    negations. The seed picks how many (1 to ``max_swaps``), which occurrences and which
    synonym; the replacement takes the original's casing, and an article "a"/"an" right before
    it is adjusted to the new word's first letter. A text without any word of the table comes
    back unchanged (callers drop such a perturbation).
    """
    rng = random.Random(f"synonym:{seed}:{text}")
    candidates = [m for m in _WHOLE_WORD.finditer(text) if m.group().lower() in SYNONYMS]
    if not candidates:
        return text
    rng.shuffle(candidates)
    n = rng.randint(1, max(1, max_swaps))
    chosen = sorted(candidates[:n], key=lambda m: m.start())
    out, pos = [], 0
    for m in chosen:
        new = _cased(rng.choice(SYNONYMS[m.group().lower()]), m.group())
        before = text[pos:m.start()]
        article = _ARTICLE.search(before)
        if article:
            fixed = _cased("an" if new[:1].lower() in "aeiou" else "a", article.group(1))
            before = before[:article.start(1)] + fixed + article.group(2)
        out += [before, new]
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)
