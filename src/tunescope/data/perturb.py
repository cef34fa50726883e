"""Deterministic, meaning-preserving perturbations of a text (C3's "typo" and "casing" kinds).

Both functions are pure: the same ``(text, seed)`` always gives the same result, and the
result always differs from ``text``. They build the stored perturbations of the built-in
sentiment task and the perturbations :func:`tunescope.data.tasks.hf_task` adds to hub data.

Typos never touch negation words ("not", "never", "nothing", contractions such as "don't",
...), so a typo cannot flip the meaning of a sentence.
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
