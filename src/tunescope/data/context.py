"""Inputs longer than a model's context, found before any model runs.

:func:`check_context` takes a study's dataset of one kind (as
:func:`tunescope.study.dataset_entries.build` makes it), a Hugging Face tokenizer and the model's
context length (:func:`tunescope.models.lm.context_length`), and raises a
:class:`~tunescope.errors.ContextLengthError` (a :class:`~tunescope.errors.DataError`) naming
the file, line and field of the first input longer than the context, its length in tokens and
the limit. :func:`first_too_long` returns that input instead.

It is cheap: a text is tokenised only when its size alone could exceed the limit
(:func:`token_bound`), so a dataset of sentences is cleared without loading the tokenizer. The
bound rests on one property of the tokenizers of Hugging Face models: every token, apart from
the special tokens added around a text, covers at least one UTF-8 byte of the text *after* the
tokenizer's normalisation. Byte-level BPE (GPT-2, Llama 3, Qwen) starts from one symbol per
byte and only merges them; SentencePiece BPE and Unigram models (Llama 2, Gemma, T5) make pieces
of one character or more, and their byte fallback spends one token per byte of a character
missing from the vocabulary (the word marker ``▁`` that stands for a space is itself a piece of
every such vocabulary); WordPiece pieces hold a character or more. Normalisation can lengthen a
text: Unicode's NFC/NFD/NFKC/NFKD forms and case mappings turn one character into at most
:data:`EXPANSION` times its UTF-8 bytes (U+FDFA under NFKC), and leave ASCII text as long as it
was. So a text of ``b`` UTF-8 bytes makes at most ``b`` tokens when it is ASCII and
``EXPANSION * b`` otherwise, plus :data:`SPECIAL_TOKENS`.

What is measured, per dataset kind (each text as the engine encodes it, with the tokenizer's
special tokens; a chat template, when an analysis uses one, adds its own tokens on top, and the
engine's own check, :func:`tunescope.engine.batching.check_context`, catches what is left):

==============  ===================================================================
pararel         each prompt (every template cut before ``[Y]`` with each fact's subject
                in ``[X]``) and each candidate object of a relation
pairs           both sentences of each pair
task            each example's text and each of its perturbations
instructions    each prompt's text
prompts         each prompt
vocabulary      each word
==============  ===================================================================
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tunescope.data.files import display_path, read_text, shown, text_lines
from tunescope.data.instructions import builtin_instructions_path, numbered_instructions
from tunescope.data.pairs import builtin_pairs_path, numbered_pairs
from tunescope.data.pararel import builtin_pararel_path, relation_lines
from tunescope.data.tasks import builtin_task_path, numbered_examples
from tunescope.data.vocabulary import numbered_words
from tunescope.errors import ContextLengthError, DataError

EXPANSION = 11
"""Most UTF-8 bytes that Unicode normalisation (NFC, NFD, NFKC, NFKD) and case mapping make of
one byte of non-ASCII text (U+FDFA, 3 bytes, is 33 bytes under NFKC and NFKD)."""

SPECIAL_TOKENS = 16
"""Tokens a tokenizer may add to any text beyond one per byte: BOS/EOS and other special
tokens of its template, a prefix space or word marker."""

BUILTIN_SOURCES = (None, "builtin", "wordfreq")
"""``source`` values that mean a built-in dataset (no user file)."""


def token_bound(text: str) -> int:
    """At most how many tokens a tokenizer makes of ``text``, special tokens included, from its
    length alone: its UTF-8 bytes when it is ASCII, :data:`EXPANSION` times that otherwise,
    plus :data:`SPECIAL_TOKENS` (see the module docstring for why this holds)."""
    return (1 if text.isascii() else EXPANSION) * _bytes(text) + SPECIAL_TOKENS


def _bytes(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def token_count(tokenizer, text: str) -> int:
    """The number of tokens of ``text`` with the tokenizer's special tokens (as the engine
    encodes it)."""
    return len(tokenizer(text, add_special_tokens=True)["input_ids"])


@dataclass(frozen=True)
class TooLong:
    """An input longer than the context: its ``text``, its length in ``tokens``, the
    ``limit``, and ``key``: which item of the dataset and which of its texts it is (read by
    the kind's origin function to name file, line and field)."""

    text: str
    tokens: int
    limit: int
    key: tuple


def first_too_long(kind: str, dataset, tokenizer, limit: int) -> TooLong | None:
    """The first input of ``dataset`` (of ``kind``, in dataset order) that ``tokenizer`` makes
    into more than ``limit`` tokens, else None; a text whose :func:`token_bound` is within the
    limit is never tokenised."""
    inputs, _ = _kind(kind)
    for text, key in inputs(dataset, limit):
        if token_bound(text) <= limit:
            continue
        tokens = token_count(tokenizer, text)
        if tokens > limit:
            return TooLong(text, tokens, limit, key)
    return None


def check_context(kind: str, dataset, tokenizer, limit: int, source: str | None = None,
                  model: str | None = None) -> None:
    """Raise :class:`~tunescope.errors.ContextLengthError` (one line: file, line, field, the
    input's length in tokens, the limit and the start of the text) for the first input of
    ``dataset`` longer than ``limit`` tokens.

    ``kind``: ``"pararel"`` (list[Relation]), ``"pairs"`` (list[ParaphrasePair]), ``"task"``
    (Task), ``"instructions"`` (list[InstructionPrompt]), ``"prompts"`` or ``"vocabulary"``
    (list[str]). ``source``: the file or directory the dataset was read from, to name the
    line (the file is read again only when an input is too long); None, ``"builtin"`` or
    ``"wordfreq"`` for a built-in dataset (named by its built-in file where it has one).
    ``model``: the model's name, to name it in the message."""
    found = first_too_long(kind, dataset, tokenizer, limit)
    if found is None:
        return
    _, origin = _kind(kind)
    try:
        where, line, field = origin(dataset, found.key, source)
    except (DataError, OSError, LookupError, ValueError):   # the file changed since it was read
        where, line, field = _described(kind, dataset, found.key, source)
    owner = f"model '{model}'" if model else "the model"
    raise ContextLengthError(
        f"{found.tokens:,} tokens, more than the context of {owner} ({limit:,} tokens): "
        f"{shown(found.text[:100])}", path=where, line=line, field=field)


# --- the inputs of each kind: (text, key), given the limit -------------------------------------

def _pararel_inputs(relations, limit: int) -> Iterator[tuple[str, tuple]]:
    """Each prompt, unless the relation's longest template and longest subject together are
    too short to exceed ``limit`` (templates x facts prompts are not even built then), and
    each candidate object."""
    for r, relation in enumerate(relations):
        longest = (max((_bytes(t.pattern) for t in relation.templates), default=0)
                   + max((_bytes(f.subject) for f in relation.facts), default=0))
        if EXPANSION * longest + SPECIAL_TOKENS > limit:
            for t, template in enumerate(relation.templates):
                for f, fact in enumerate(relation.facts):
                    yield template.prompt(fact.subject), (r, t, f)
        for obj in relation.objects:
            yield obj, (r, "object", obj)


def _pairs_inputs(pairs, limit: int) -> Iterator[tuple[str, tuple]]:
    for i, pair in enumerate(pairs):
        yield pair.a, (i, "a")
        yield pair.b, (i, "b")


def _task_inputs(task, limit: int) -> Iterator[tuple[str, tuple]]:
    for i, example in enumerate(task.examples):
        yield example.text, (i, "text")
        for kind, text in example.perturbations:
            yield text, (i, f"perturbations.{kind}")


def _instruction_inputs(prompts, limit: int) -> Iterator[tuple[str, tuple]]:
    for i, prompt in enumerate(prompts):
        yield prompt.text, (i, "prompt")


def _text_inputs(texts, limit: int) -> Iterator[tuple[str, tuple]]:
    for i, text in enumerate(texts):
        yield text, (i, None)


# --- where an input comes from: (file or description, line, field) ---------------------------

Origin = tuple
"""Where an input comes from: (file, or a description where there is none; 1-based line or
None; field or None)."""


def _first_line(numbered, wanted: Callable) -> int:
    """The first line of ``numbered`` ((line, item) pairs) whose item is ``wanted``;
    LookupError when none is."""
    for line, item in numbered:
        if wanted(item):
            return line
    raise LookupError("not in the file")


def _builtin_path(kind: str) -> Path | None:
    if kind == "pairs":
        return builtin_pairs_path()
    if kind == "task":
        return builtin_task_path()
    if kind == "instructions":
        return builtin_instructions_path()
    if kind == "pararel":
        return builtin_pararel_path()
    return None


def _file(kind: str, source) -> Path | None:
    """The file or directory a dataset of ``kind`` was read from (built-in: its packaged file,
    None for the built-in sets that have none)."""
    if source in BUILTIN_SOURCES:
        return _builtin_path(kind)
    return Path(os.fspath(source)).expanduser()


def _described(kind: str, dataset, key: tuple, source) -> Origin:
    """An input named without a line: ``built-in pairs, item 3``, ``DIR, relation P17``."""
    what = f"built-in {kind}" if source in BUILTIN_SOURCES else display_path(source)
    if kind == "pararel":
        return f"{what}, relation {dataset[key[0]].id}", None, None
    return f"{what}, item {key[0] + 1}", None, key[1]


def _pararel_origin(relations, key: tuple, source) -> Origin:

    relation = relations[key[0]]
    root = _file("pararel", source)
    pat_file, patterns, tup_file, facts = relation_lines(root, relation.id)
    if key[1] == "object":
        line = _first_line(((n, obj) for (_, obj), n in facts.items()), lambda o: o == key[2])
        return display_path(tup_file), line, "obj_label"
    template, fact = relation.templates[key[1]], relation.facts[key[2]]
    if len(fact.subject) > len(template.pattern):
        return display_path(tup_file), facts[(fact.subject, fact.object)], "sub_label"
    return display_path(pat_file), patterns[template.pattern], "pattern"


def _pairs_origin(pairs, key: tuple, source) -> Origin:

    path = _file("pairs", source)
    try:
        line = _first_line(numbered_pairs(path), lambda pair: pair == pairs[key[0]])
    except LookupError:                 # a built-in pair made from ParaRel: in no file
        return _described("pairs", pairs, key, source)
    return display_path(path), line, key[1]


def _task_origin(task, key: tuple, source) -> Origin:

    path = _file("task", source)
    wanted = task.examples[key[0]].id
    line = _first_line(numbered_examples(path), lambda example: example.id == wanted)
    return display_path(path), line, key[1]


def _instruction_origin(prompts, key: tuple, source) -> Origin:

    path = _file("instructions", source)
    wanted = prompts[key[0]].id
    line = _first_line(numbered_instructions(path), lambda prompt: prompt.id == wanted)
    return display_path(path), line, "Prompt" if path.suffix.lower() == ".tsv" else "prompt"


def _prompt_origin(prompts, key: tuple, source) -> Origin:
    if source in BUILTIN_SOURCES:
        return _described("prompts", prompts, key, source)
    path, text = read_text(_file("prompts", source))
    line = _first_line(text_lines(text), lambda row: row.strip() == prompts[key[0]])
    return display_path(path), line, None


def _vocabulary_origin(words, key: tuple, source) -> Origin:

    if source in BUILTIN_SOURCES:
        return _described("vocabulary", words, key, source)
    path = _file("vocabulary", source)
    line = _first_line(numbered_words(path), lambda word: word == words[key[0]])
    return display_path(path), line, "word"


KINDS: dict[str, tuple[Callable, Callable]] = {
    "pararel": (_pararel_inputs, _pararel_origin),
    "pairs": (_pairs_inputs, _pairs_origin),
    "task": (_task_inputs, _task_origin),
    "instructions": (_instruction_inputs, _instruction_origin),
    "prompts": (_text_inputs, _prompt_origin),
    "vocabulary": (_text_inputs, _vocabulary_origin),
}
"""Each dataset kind's inputs ((dataset, limit) -> (text, key) pairs: every text that could be
longer than the limit) and origin ((dataset, key, source) -> (file or description, line,
field))."""


def _kind(kind: str) -> tuple[Callable, Callable]:
    if kind not in KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}; kinds: {', '.join(KINDS)}")
    return KINDS[kind]
