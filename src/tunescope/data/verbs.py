"""Verb lists for W2: the instruction verbs of Wu et al. and a baseline of frequent general
English verbs, built offline from ``wordfreq`` (frequencies) and ``lemminflect`` (inflections).

The rule for :func:`general_verbs` (a word counts as a general verb when all hold):

1. it is a lower-case alphabetic word of wordfreq's English list (candidates are taken in
   wordfreq's frequency order, which is also the ranking of the result);
2. lemminflect knows it as a verb lemma: ``getAllLemmas(word, upos="VERB")`` returns exactly the
   word itself (so inflected forms such as "went" or "running" are out, and so are words that
   are mainly another verb's form, such as "found" (find) or "saw" (see));
3. its verbal use is attested in running text, a proxy for "the word is commonly used as a
   verb": the wordfreq frequency of its distinct past forms (VBD and VBN, e.g. "ate", "eaten")
   is at least :data:`MIN_VERBAL_RATIO` (2%) of the base form's frequency. For verbs whose past
   equals the base ("put", "set", "cost") the -ing form is used instead. Nouns that the
   dictionary also lists as verbs but that hardly occur as verbs ("table", "water", "people",
   "time": "tabled" is 0.8% of "table") fail this test; nouns that are ordinary verbs as well
   ("book", "place", "name", "state") pass it;
4. it is not an English stopword (:data:`STOPWORDS`, which holds auxiliaries and modals such
   as "be", "have", "will", "can") and not one of :data:`INSTRUCTION_VERBS`.
"""

from __future__ import annotations

import functools
import hashlib

from tunescope.common.atomic import write_atomic
from tunescope.common.paths import cache_dir
from tunescope.errors import TunescopeError

INSTRUCTION_VERBS: tuple[str, ...] = (
    "write", "give", "find", "create", "make", "describe", "design", "generate", "classify",
    "have", "explain", "tell", "identify", "output", "predict", "detect", "translate",
    "summarize", "retrieve", "revise", "correct", "develop", "analyze", "compose", "demonstrate",
    "interpret", "solve", "follow", "clarify", "say", "help", "act", "recommend", "estimate",
    "edit", "format", "repeat", "evaluate",
)
"""The 38 instruction verbs of Wu et al. (docs/methods.md#w2), in the study's order."""

_STOPWORD_TEXT = """
a about above after again against all almost along already also although always am among an
and another any anybody anyone anything anywhere are around as at be because been before being
below beside besides between beyond both but by can cannot could did do does doing done down
during each either else enough even ever every everybody everyone everything everywhere except
few for from further had has have having he her here hers herself him himself his how however i
if in indeed instead into is it its itself just least less many may me might mine more most
much must my myself neither never nevertheless no nobody none nor not nothing now nowhere of off
often on once one only onto or other others otherwise ought our ours ourselves out over own
perhaps quite rather same shall she should since so some somebody someone something sometimes
somewhere still such than that the their theirs them themselves then there therefore these they
this those though through throughout thus to together too toward towards under unless until up
upon us very via was we well were what whatever when whenever where whereas wherever whether
which while who whoever whom whose why will with within without would yet you your yours
yourself yourselves
"""
STOPWORDS: frozenset[str] = frozenset(_STOPWORD_TEXT.split())
"""English function words (pronouns, determiners, prepositions, conjunctions, auxiliaries,
modals, common adverbs): never counted as general verbs."""

MIN_VERBAL_RATIO = 0.02
"""Rule 3 of :func:`general_verbs`: least frequency of a word's past (or -ing) forms relative
to the base form."""


def _lexicon():
    try:
        import lemminflect
        import wordfreq
    except ImportError as exc:
        raise TunescopeError(f"the '{exc.name}' package is missing; install it with "
                             f"'pip install wordfreq lemminflect' (tunescope dependencies)") from exc
    return wordfreq, lemminflect


def verbal_ratio(word: str) -> float | None:
    """Rule 3's measure for ``word`` (see the module docstring), or ``None`` when lemminflect
    does not know ``word`` as its own verb lemma (rule 2)."""
    wf, li = _lexicon()
    lemmas = li.getAllLemmas(word, upos="VERB").get("VERB", ())
    if tuple(lemmas) != (word,):
        return None
    infl = li.getAllInflections(word, upos="VERB")
    past = {f for tag in ("VBD", "VBN") for f in infl.get(tag, ())}
    if word in past or not past:
        forms = set(infl.get("VBG", ())) - {word}
    else:
        forms = past
    base = wf.word_frequency(word, "en")
    if base <= 0:
        return 0.0
    return sum(wf.word_frequency(f, "en") for f in forms) / base


def _cache_file(n: int):
    """Where :func:`general_verbs` keeps its list for ``n`` (under ``$TUNESCOPE_CACHE``), named
    by everything the list depends on: the rule's settings and the lexicons' versions."""
    from importlib.metadata import version


    rule = repr((MIN_VERBAL_RATIO, sorted(STOPWORDS), INSTRUCTION_VERBS, _RULE_VERSION))
    key = hashlib.sha256(f"{rule} wordfreq {version('wordfreq')} lemminflect "
                         f"{version('lemminflect')}".encode()).hexdigest()[:16]
    return cache_dir() / "lexicons" / f"general-verbs-{n}-{key}.txt"


_RULE_VERSION = 1
"""Bumped whenever the rule of :func:`general_verbs` changes (invalidates cached lists)."""


@functools.lru_cache(maxsize=8)
def _general_verbs(n: int) -> tuple[str, ...]:
    """The list for ``n``: read from the disk cache when a complete one is there (computing it
    takes 1-10 s), otherwise computed and cached (best effort: an unwritable cache is skipped)."""
    _lexicon()
    path = _cache_file(n)
    try:
        cached = tuple(path.read_text(encoding="utf-8").split("\n"))
    except (OSError, UnicodeDecodeError):
        cached = ()
    if len(cached) == n and all(w.isalpha() and w == w.lower() for w in cached):
        return cached
    verbs = _compute_general_verbs(n)
    try:
        write_atomic(path, "\n".join(verbs).encode("utf-8"))
    except OSError:
        pass
    return verbs


def _compute_general_verbs(n: int) -> tuple[str, ...]:
    wf, _ = _lexicon()
    excluded = STOPWORDS | set(INSTRUCTION_VERBS)
    verbs: list[str] = []
    seen: set[str] = set()
    start, limit = 0, max(20 * n, 10000)
    while True:
        candidates = wf.top_n_list("en", limit)
        for w in candidates[start:]:
            if w in seen or w in excluded or not (w.isalpha() and w == w.lower()):
                continue
            seen.add(w)
            ratio = verbal_ratio(w)
            if ratio is not None and ratio >= MIN_VERBAL_RATIO:
                verbs.append(w)
                if len(verbs) == n:
                    return tuple(verbs)
        if len(candidates) < limit:
            raise TunescopeError(f"only {len(verbs)} general English verbs found; "
                                 f"{n} were asked for")
        start, limit = len(candidates), limit * 2


def general_verbs(n: int = 3000) -> list[str]:
    """The ``n`` most frequent general English verbs (lemmas), most frequent first, without
    stopwords and without :data:`INSTRUCTION_VERBS`; the rule is in the module docstring."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return list(_general_verbs(n))
