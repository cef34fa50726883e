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

NEGATIONS = frozenset({
    "no", "not", "nor", "never", "none", "nobody", "nothing", "nowhere", "neither", "cannot",
    "without", "hardly", "barely", "scarcely", "rarely", "seldom", "nope", "nay",
})
"""Words a typo never touches, nor produces (lower case)."""

_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEIGHBOURS: dict[str, str] = {}
for _r, _row in enumerate(_KEYBOARD_ROWS):
    for _c, _ch in enumerate(_row):
        near = [_row[i] for i in (_c - 1, _c + 1) if 0 <= i < len(_row)]
        for _other in (_r - 1, _r + 1):
            if 0 <= _other < len(_KEYBOARD_ROWS):
                near += [_KEYBOARD_ROWS[_other][i] for i in (_c - 1, _c, _c + 1)
                         if 0 <= i < len(_KEYBOARD_ROWS[_other])]
        _NEIGHBOURS[_ch] = "".join(near)

# Whole alphabetic words, not part of a contraction ("don't") or of a token with digits.
_WORD = re.compile(r"(?<![\w'’])[A-Za-z]+(?![\w'’])")


def _typo_word(word: str, rng: random.Random) -> str:
    """One character-level typo inside ``word`` (first and last letters stay in place)."""
    ops = ["swap", "delete", "double", "neighbour"]
    rng.shuffle(ops)
    inner = range(1, len(word) - 1)
    for op in ops:
        if op == "swap":
            spots = [i for i in range(1, len(word) - 2) if word[i] != word[i + 1]]
            if spots:
                i = rng.choice(spots)
                out = word[:i] + word[i + 1] + word[i] + word[i + 2:]
            else:
                continue
        elif op == "delete":
            if len(word) < 5:
                continue
            i = rng.choice(inner)
            out = word[:i] + word[i + 1:]
        elif op == "double":
            i = rng.choice(inner)
            out = word[:i] + word[i] + word[i:]
        else:
            i = rng.choice(inner)
            near = _NEIGHBOURS.get(word[i].lower(), "")
            if not near:
                continue
            ch = rng.choice(near)
            out = word[:i] + (ch.upper() if word[i].isupper() else ch) + word[i + 1:]
        if out != word and out.lower() not in NEGATIONS:
            return out
    return word[:1] + word[1:2] + word[1:]  # doubled second letter: always differs


def typo(text: str, seed: int = 0, max_typos: int = 2) -> str:
    """``text`` with one or two character-level typos, chosen deterministically by ``seed``.

    Typos go into alphabetic words of four letters or more (shorter words as a fallback),
    never into negation words (:data:`NEGATIONS`) or contractions, and are one of: two adjacent
    inner letters swapped, an inner letter dropped, an inner letter doubled, or an inner letter
    replaced by a neighbouring key. The number of typos is 1 or 2 (at most ``max_typos``).
    """
    rng = random.Random(f"typo:{seed}:{text}")
    words = [m for m in _WORD.finditer(text) if m.group().lower() not in NEGATIONS]
    candidates = [m for m in words if len(m.group()) >= 4] or [m for m in words
                                                                if len(m.group()) >= 3]
    if not candidates:
        if not text:
            return "."
        return text + text[-1]  # nothing typeable: a doubled last character
    n = min(len(candidates), rng.randint(1, max(1, max_typos)))
    chosen = sorted(rng.sample(candidates, n), key=lambda m: m.start())
    out, pos = [], 0
    for m in chosen:
        out += [text[pos:m.start()], _typo_word(m.group(), rng)]
        pos = m.end()
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
