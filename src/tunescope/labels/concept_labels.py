"""Labelling feed-forward concepts (docs/methods.md#w3): a user task and a linguistic level for each
principal component, from the component's top words.

Every labeller has one method, ``label(components, runs) -> list[list[ConceptLabel]]``:
``components`` holds each component's top words (most related first); the answer holds, per
component, one :class:`ConceptLabel` per run. Categories are :data:`CATEGORIES` (user tasks,
"none" when the concept serves none of them), levels are :data:`LEVELS`.

- :class:`~tunescope.labels.offline_labeller.OfflineLabeller` (its own module): rule-based
  and deterministic (lexicons and string heuristics written there); no model, no network.
  Every run gives the same label.
- :class:`LLMLabeller`: the study's protocol with a chat model: (1) describe the concept from the
  top 15 words, (2) pick a user task, (3) pick a linguistic level; answers parsed robustly and
  cached. Backends: :class:`OpenAIChat` (any OpenAI-compatible server, over HTTP with urllib) and
  :class:`LocalChat` (a loaded instruction-tuned :class:`~tunescope.models.lm.LM`).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tunescope.common.atomic import write_atomic
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
            write_atomic(self.path, json.dumps({"format": self.FORMAT,
                                                "entries": self.entries}).encode())
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
