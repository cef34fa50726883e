"""Labelling feed-forward concepts (METHODS.md W3): a user task and a linguistic level for each
principal component, from the component's top words.

Every labeller has one method, ``label(components, runs) -> list[list[ConceptLabel]]``:
``components`` holds each component's top words (most related first); the answer holds, per
component, one :class:`ConceptLabel` per run. Categories are :data:`CATEGORIES` (user tasks,
"none" when the concept serves none of them), levels are :data:`LEVELS`.

- :class:`OfflineLabeller`: rule-based and deterministic (lexicons and string heuristics written
  here); no model, no network. Every run gives the same label.
- :class:`LLMLabeller`: the study's protocol with a chat model: (1) describe the concept from the
  top 15 words, (2) pick a user task, (3) pick a linguistic level; answers parsed robustly and
  cached. Backends: :class:`OpenAIChat` (any OpenAI-compatible server, over HTTP with urllib) and
  :class:`LocalChat` (a loaded instruction-tuned :class:`~tunescope.models.lm.LM`).
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import json
import os
import re
import tempfile
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tunescope.errors import DataError, OutputError, TunescopeError

CATEGORIES = ("writing", "math", "coding", "translation", "none")
"""User tasks a concept may serve (Wu et al.); "none": no task."""

LEVELS = ("phonology", "morphology", "syntax", "semantics")
"""Linguistic levels a concept may belong to."""

UNPARSED = "unparsed"
"""The level recorded when an LLM's answer names no level."""


@dataclass(frozen=True)
class ConceptLabel:
    """One labelling of one component: ``category`` (a :data:`CATEGORIES` value), ``level``
    (a :data:`LEVELS` value, or :data:`UNPARSED`), a free-text ``description`` of the concept,
    and ``parsed``: False when an LLM answer named no valid option (the label then falls back
    to "none" / "unparsed")."""

    category: str
    level: str
    description: str = ""
    parsed: bool = True


class Labeller(Protocol):
    """What :func:`~tunescope.analyses.ffn_concepts.ffn_concepts` needs from a labeller."""

    name: str

    def label(self, components: list[list[str]], runs: int = 1) -> list[list[ConceptLabel]]:
        ...


# --------------------------------------------------------------------------------------------
# Offline, rule-based labeller
# --------------------------------------------------------------------------------------------

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


class OfflineLabeller:
    """Rule-based labels from a component's top words; deterministic (N runs give N equal
    labels), no model, no network.

    Category: each word is evidence for a task when it (or its singular) is in that task's
    lexicon (:data:`CATEGORY_LEXICONS`) or matches the task's string heuristic (numbers and
    math symbols; identifier-like strings such as ``snake_case``, ``camelCase``, ``.py`` or
    code punctuation; accented or non-Latin words). The task with the largest share of evidence
    words wins when that share is at least ``min_share`` and at least ``min_hits`` words; else
    "none". Ties go to the task listed first in :data:`CATEGORIES`.

    Level: phonology (sound words, short fragments or vowel-less pieces, groups of three or more
    words sharing a final three letters that are not a suffix: rhymes), morphology (words
    sharing a stem, one word inflecting another, or a group of words sharing a suffix),
    syntax (function words, punctuation). The level with the largest share wins when it is at
    least ``level_share``; otherwise the concept is semantic (content words). Ties go to the
    level listed first in :data:`LEVELS`.
    """

    name = "offline"

    def __init__(self, min_share: float = 0.1, min_hits: int = 2, level_share: float = 0.3):
        self.min_share, self.min_hits, self.level_share = min_share, min_hits, level_share

    def label_one(self, words: Sequence[str]) -> ConceptLabel:
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
        category = best if count >= self.min_hits and count / n >= self.min_share else "none"
        scores = _level_scores([info[1] for info in infos])
        top_level = max(("phonology", "morphology", "syntax"), key=lambda lv: scores[lv][0])
        level = top_level if scores[top_level][0] >= self.level_share else "semantics"
        evidence = hits[best] if category != "none" else []
        level_evidence = scores[level][1] if level != "semantics" else []
        description = f"{category}" + (f" ({count}/{n}: {', '.join(evidence[:5])})" if evidence
                                        else "")
        description += f"; {level}" + (f" ({', '.join(level_evidence[:5])})" if level_evidence
                                       else "")
        return ConceptLabel(category, level, description)

    def label(self, components: list[list[str]], runs: int = 1) -> list[list[ConceptLabel]]:
        """Per component, ``runs`` identical labels (see class docstring)."""
        return [[lab] * runs for lab in map(self.label_one, components)]


# --------------------------------------------------------------------------------------------
# Chat backends
# --------------------------------------------------------------------------------------------

class ChatBackend(Protocol):
    """A chat model: ``model`` names it (cache key), ``deterministic`` says whether every run
    gives the same answer, ``complete`` answers each prompt as one user turn."""

    model: str
    deterministic: bool

    def complete(self, prompts: Sequence[str], run: int = 0) -> list[str]:
        ...


RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
"""HTTP statuses worth retrying (timeouts, rate limits, overloaded or restarting servers)."""


class OpenAIChat:
    """A model behind any OpenAI-compatible ``/v1/chat/completions`` endpoint (OpenAI, vLLM,
    llama.cpp's server, Ollama, ...), over plain HTTP with urllib.

    ``base_url``: the server root (``http://host:port``) or its ``/v1`` URL; ``api_key``: sent
    as a bearer token when given. Each run samples with ``temperature`` and sends the seed
    ``seed + run`` (servers that refuse a seed get none from then on). Connection errors,
    timeouts and the statuses of :data:`RETRY_STATUS` are retried ``retries`` times, waiting
    ``backoff * 2**i`` seconds (at most ``max_backoff``, or the server's Retry-After); other
    HTTP errors fail at once. Failures raise :class:`TunescopeError`.
    """

    deterministic = False

    def __init__(self, base_url: str, model: str, api_key: str | None = None,
                 timeout: float = 60.0, temperature: float = 0.7, max_tokens: int = 128,
                 seed: int | None = 0, retries: int = 5, backoff: float = 1.0,
                 max_backoff: float = 30.0):
        root = base_url.rstrip("/")
        self.url = root + ("/chat/completions" if root.endswith("/v1") else "/v1/chat/completions")
        self.model, self.api_key, self.timeout = model, api_key, timeout
        self.temperature, self.max_tokens, self.seed = temperature, max_tokens, seed
        self.retries, self.backoff, self.max_backoff = retries, backoff, max_backoff

    def complete(self, prompts: Sequence[str], run: int = 0) -> list[str]:
        """One answer per prompt (requests sent one after the other)."""
        return [self.chat(p, run) for p in prompts]

    def chat(self, prompt: str, run: int = 0) -> str:
        """The assistant's answer to ``prompt`` as one user turn, in run ``run``."""
        body = {"model": self.model, "messages": [{"role": "user", "content": prompt}],
                "temperature": self.temperature, "max_tokens": self.max_tokens}
        if self.seed is not None:
            body["seed"] = self.seed + run
        try:
            data = self._post(body)
        except _BadRequest as e:
            if "seed" not in body or "seed" not in e.text.lower():
                raise TunescopeError(f"{self.url}: HTTP 400: {e.text}") from None
            self.seed = None                               # the server does not take a seed
            del body["seed"]
            data = self._post(body)
        try:
            return str(data["choices"][0]["message"]["content"] or "")
        except (KeyError, IndexError, TypeError):
            raise TunescopeError(f"{self.url}: answer is not a chat completion: "
                                 f"{json.dumps(data)[:200]}") from None

    def _post(self, body: dict) -> dict:
        payload = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        problem, wait = "", None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(wait if wait is not None
                           else min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))
            wait = None
            request = urllib.request.Request(self.url, data=payload, headers=headers,
                                             method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    text = response.read().decode("utf-8", errors="replace")
            except urllib.error.HTTPError as e:
                detail = e.read()[:500].decode("utf-8", errors="replace")
                if e.code == 400:
                    raise _BadRequest(detail) from None
                if e.code not in RETRY_STATUS:
                    raise TunescopeError(f"{self.url}: HTTP {e.code}: {detail[:200]}") from None
                problem = f"HTTP {e.code}"
                retry_after = e.headers.get("Retry-After") if e.headers else None
                if retry_after and retry_after.strip().isdigit():
                    wait = min(self.max_backoff, float(retry_after))
                continue
            except (urllib.error.URLError, http.client.HTTPException, ConnectionError,
                    TimeoutError) as e:
                problem = str(getattr(e, "reason", None) or e) or type(e).__name__
                continue
            try:
                return json.loads(text)
            except ValueError:
                raise TunescopeError(f"{self.url}: answer is not JSON: {text[:200]!r}") from None
        raise TunescopeError(f"{self.url}: no answer after {self.retries + 1} attempts "
                             f"({problem})")


class _BadRequest(Exception):
    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


class LocalChat:
    """A loaded instruction-tuned model as chat backend: greedy generation of at most
    ``max_new_tokens`` tokens after the chat template's user turn (e.g. the bundled
    smollm2-135m-instruct). Greedy decoding is deterministic, so every run gives the same
    answer; :class:`LLMLabeller` asks once and repeats the label for all runs."""

    deterministic = True

    def __init__(self, lm, max_new_tokens: int = 64, batch_size: int | None = None):
        self.lm, self.max_new_tokens, self.batch_size = lm, max_new_tokens, batch_size
        self.model = lm.name

    def complete(self, prompts: Sequence[str], run: int = 0) -> list[str]:
        """Greedy answers, batched; ``run`` changes nothing."""
        from tunescope.engine.generation import generate_greedy
        texts = [self.lm.format_prompt(p, chat=True) for p in prompts]
        out = generate_greedy(self.lm, texts, max_new_tokens=self.max_new_tokens,
                              batch_size=self.batch_size, desc=f"{self.model}: labelling")
        return [g.text.strip() for g in out]


# --------------------------------------------------------------------------------------------
# Answer cache
# --------------------------------------------------------------------------------------------

class ChatCache:
    """Answers keyed by (model, prompt, run), kept in memory and (with a ``path``) in a JSON
    file, rewritten atomically (temporary file, then rename) by :meth:`save`."""

    FORMAT = "tunescope-chat-cache/1"

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else None
        self.entries: dict[str, dict] = {}
        self._dirty = False
        if self.path is not None and self.path.exists():
            try:
                data = json.loads(self.path.read_text())
                if data.get("format") != self.FORMAT:
                    raise ValueError(f"unknown format {data.get('format')!r}")
                self.entries = dict(data["entries"])
            except (OSError, ValueError, KeyError, AttributeError) as e:
                raise DataError(f"cannot read chat cache: {e}", path=str(self.path)) from None

    @staticmethod
    def key(model: str, prompt: str, run: int) -> str:
        return hashlib.sha256(json.dumps([model, prompt, run]).encode()).hexdigest()

    def get(self, model: str, prompt: str, run: int) -> str | None:
        entry = self.entries.get(self.key(model, prompt, run))
        return None if entry is None else entry["answer"]

    def put(self, model: str, prompt: str, run: int, answer: str) -> None:
        self.entries[self.key(model, prompt, run)] = {"model": model, "run": run,
                                                      "prompt": prompt, "answer": answer}
        self._dirty = True

    def save(self) -> None:
        """Write the file (when there is one and something changed), atomically."""
        if self.path is None or not self._dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            with os.fdopen(fd, "w") as f:
                json.dump({"format": self.FORMAT, "entries": self.entries}, f)
            os.replace(tmp, self.path)
        except OSError as e:
            raise OutputError(f"cannot write chat cache {self.path}: {e.strerror or e}") from None
        self._dirty = False


# --------------------------------------------------------------------------------------------
# The LLM labeller: prompts and parsing
# --------------------------------------------------------------------------------------------

def describe_prompt(words: Sequence[str]) -> str:
    """Step 1: ask for the concept behind a component's top words."""
    return ("Here are the words most strongly associated with one direction inside a language "
            f"model: {', '.join(words)}.\n"
            "In one short sentence, describe the concept these words have in common.")


def task_prompt(words: Sequence[str], description: str) -> str:
    """Step 2: ask which user task the concept serves."""
    return (f"A concept in a language model is described as: \"{description.strip()}\"\n"
            f"Its typical words are: {', '.join(words)}.\n"
            "Which user task is this concept most useful for? Answer with one word: writing, "
            "math, coding, translation, or none.")


def level_prompt(words: Sequence[str], description: str) -> str:
    """Step 3: ask for the concept's linguistic level."""
    return (f"A concept in a language model is described as: \"{description.strip()}\"\n"
            f"Its typical words are: {', '.join(words)}.\n"
            "At which linguistic level does this concept work? Answer with one word: "
            "phonology, morphology, syntax, or semantics.")


_CATEGORY_PATTERNS = {
    "writing": r"writ\w*|essays?|stor(?:y|ies)|poe(?:m|ms|try)|creative",
    "math": r"math\w*|arithmetic\w*|calculat\w*|algebra\w*",
    "coding": r"cod(?:e|es|ing)\b|programm\w*|software",
    "translation": r"translat\w*",
    "none": r"none\b|no task\b|neither\b",
}
_LEVEL_PATTERNS = {
    "phonology": r"phonolog\w*|phonetic\w*|phonem\w*",
    "morphology": r"morpholog\w*|morphem\w*",
    "syntax": r"syntax|syntactic\w*|grammat\w*",
    "semantics": r"semantic\w*|meaning\w*",
}


def _first_match(answer: str, patterns: dict[str, str]) -> str | None:
    """The option whose pattern occurs first in ``answer`` (case-insensitive, at a word start);
    None when none occurs or when the answer names three or more options (an echo of the
    question's list, not an answer)."""
    found = []
    for option, pattern in patterns.items():
        m = re.search(rf"\b(?:{pattern})", answer, flags=re.IGNORECASE)
        if m:
            found.append((m.start(), option))
    if not found or len(found) >= 3:
        return None
    return min(found)[1]


def parse_category(answer: str) -> str | None:
    """The user task an answer names first (:data:`CATEGORIES`), or None."""
    return _first_match(answer, _CATEGORY_PATTERNS)


def parse_level(answer: str) -> str | None:
    """The linguistic level an answer names first (:data:`LEVELS`), or None."""
    return _first_match(answer, _LEVEL_PATTERNS)


class LLMLabeller:
    """The study's three-step protocol with a chat model (``backend``: :class:`OpenAIChat`,
    :class:`LocalChat` or anything with ``model``, ``deterministic`` and ``complete``).

    Per component and run: (1) a description of the concept from its top ``n_words`` (15)
    words; (2) a user task and (3) a linguistic level, each asked with the description and the
    words. Answers are parsed for the first option they name (:func:`parse_category`,
    :func:`parse_level`); an answer naming none gives "none" / :data:`UNPARSED` with
    ``parsed=False``. Answers are cached by (model, prompt, run) in ``cache_path`` (a JSON file,
    saved atomically after every ``chunk`` requests), so an interrupted labelling resumes and a
    repeated one sends no request. With a deterministic backend (greedy :class:`LocalChat`)
    runs are identical: only run 0 is asked and its label repeated.
    """

    def __init__(self, backend: ChatBackend, cache_path: str | os.PathLike | None = None,
                 n_words: int = 15, chunk: int = 32):
        self.backend, self.n_words, self.chunk = backend, n_words, chunk
        self.cache = ChatCache(cache_path)
        self.name = f"llm:{backend.model}"

    def _ask(self, prompts: list[str], run: int) -> list[str]:
        model = self.backend.model
        missing = list(dict.fromkeys(p for p in prompts if self.cache.get(model, p, run) is None))
        for start in range(0, len(missing), self.chunk):
            part = missing[start:start + self.chunk]
            for prompt, answer in zip(part, self.backend.complete(part, run)):
                self.cache.put(model, prompt, run, answer)
            self.cache.save()
        return [self.cache.get(model, p, run) for p in prompts]

    def label(self, components: list[list[str]], runs: int = 5) -> list[list[ConceptLabel]]:
        """Per component, one label per run (see class docstring)."""
        if runs < 1:
            raise TunescopeError(f"runs must be positive, got {runs}")
        asked = 1 if self.backend.deterministic else runs
        words = [list(ws[:self.n_words]) for ws in components]
        out: list[list[ConceptLabel]] = [[] for _ in components]
        for run in range(asked):
            descriptions = self._ask([describe_prompt(ws) for ws in words], run)
            questions = ([task_prompt(ws, d) for ws, d in zip(words, descriptions)]
                         + [level_prompt(ws, d) for ws, d in zip(words, descriptions)])
            answers = self._ask(questions, run)
            n = len(words)
            for i, (d, task, level) in enumerate(zip(descriptions, answers[:n], answers[n:])):
                category, lv = parse_category(task), parse_level(level)
                out[i].append(ConceptLabel(category or "none", lv or UNPARSED, d.strip(),
                                           parsed=category is not None and lv is not None))
        if asked < runs:
            out = [labels * runs for labels in out]
        return out
