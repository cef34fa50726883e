"""Plain typed records that every dataset loader produces and every analysis consumes.

Records are frozen dataclasses: hashable, comparable, cheap to fingerprint. Loaders validate
input and raise :class:`tunescope.errors.DataError` naming file, line and field; the records
themselves only check invariants that hold for any source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tunescope.data.files import shown

_ARTICLE_BEFORE_Y = re.compile(r"\b(a|an)\s+\[Y\]", re.IGNORECASE)
_Y_LAST = re.compile(r"\[Y\]\s*\.?\s*$")


def template_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a valid ParaRel template, or None when it is.

    A template holds exactly one ``[X]`` (the subject) and exactly one ``[Y]`` (the object).
    """
    nx, ny = pattern.count("[X]"), pattern.count("[Y]")
    if nx != 1 or ny != 1:
        return (f"template must contain exactly one [X] and one [Y] (found {nx} [X], {ny} [Y]): "
                f"{shown(pattern)}")
    return None


@dataclass(frozen=True)
class Template:
    """One phrasing of a relation, e.g. ``"The capital of [X] is [Y]."``."""

    relation_id: str
    pattern: str

    def __post_init__(self):
        problem = template_problem(self.pattern)
        if problem:
            raise ValueError(problem)

    @property
    def y_last(self) -> bool:
        """True when ``[Y]`` ends the template (optionally followed by ``.`` or `` .``)."""
        return bool(_Y_LAST.search(self.pattern))

    @property
    def article(self) -> str | None:
        """``"a"`` or ``"an"`` when the template reads "a [Y]" / "an [Y]", else None."""
        m = _ARTICLE_BEFORE_Y.search(self.pattern)
        return m.group(1).lower() if m else None

    def prompt(self, subject: str) -> str:
        """The text before ``[Y]`` with ``[X]`` filled in, trailing whitespace stripped."""
        return self.pattern.split("[Y]", 1)[0].replace("[X]", subject).rstrip()

    def fill(self, subject: str, obj: str) -> str:
        """The full sentence with both slots filled."""
        return self.pattern.replace("[X]", subject).replace("[Y]", obj)


@dataclass(frozen=True)
class Fact:
    """A (subject, relation, object) triple, e.g. (France, P36, Paris)."""

    relation_id: str
    subject: str
    object: str
    uuid: str = ""


@dataclass(frozen=True)
class Relation:
    """A relation with its templates (paraphrases) and its facts.

    ``candidates`` is the relation's full set of gold objects, from its whole fact file: a
    loader that keeps only a sample of the facts keeps all the candidates, so that a sample
    never shrinks C1's candidate set (empty: the objects of ``facts``). ``sampling`` says how
    ``facts`` was taken from the file (e.g. ``"random 8 of 43 (seed 0)"``; empty: all).
    """

    id: str
    templates: tuple[Template, ...]
    facts: tuple[Fact, ...]
    label: str = ""
    candidates: tuple[str, ...] = ()
    sampling: str = ""

    @property
    def objects(self) -> tuple[str, ...]:
        """C1's candidate set: ``candidates`` when given, else the distinct gold objects of
        ``facts``; in first-seen order either way, every fact's object included."""
        own = dict.fromkeys(f.object for f in self.facts)
        if not self.candidates:
            return tuple(own)
        return tuple(dict.fromkeys([*self.candidates, *own]))


@dataclass(frozen=True)
class ParaphrasePair:
    """Two sentences and whether they are paraphrases (label 1) or not (label 0)."""

    a: str
    b: str
    label: int
    source: str = ""

    def __post_init__(self):
        if self.label not in (0, 1):
            raise ValueError(f"paraphrase label must be 0 or 1, got {self.label!r}")


@dataclass(frozen=True)
class TaskExample:
    """A labelled task input with meaning-preserving perturbations of it.

    ``perturbations`` holds ``(kind, text)`` pairs, kind one of e.g. ``"paraphrase"``,
    ``"typo"``, ``"casing"``, ``"punctuation"``, ``"synonym"``.
    """

    id: str
    text: str
    label: str
    perturbations: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Task:
    """A labelled classification task: its label words, a zero-shot prompt and examples.

    ``prompt_template`` contains ``{text}``; zero-shot scoring appends `` <label word>``.
    ``label_words`` maps each label to the word scored as its continuation.
    """

    name: str
    labels: tuple[str, ...]
    label_words: tuple[tuple[str, str], ...]
    prompt_template: str
    examples: tuple[TaskExample, ...] = field(default=())


@dataclass(frozen=True)
class InstructionPrompt:
    """A prompt whose instruction part is marked (W1).

    ``instruction_spans`` are character ranges ``[start, end)`` of ``text`` that a human marked
    as the instruction; the rest is context (e.g. the input to work on). ``source`` names the
    collection (e.g. ``"lima"``), ``category`` the kind of task (writing, math, coding,
    translation, classification, qa); ``response`` is a reference response when one is given.
    """

    id: str
    text: str
    instruction_spans: tuple[tuple[int, int], ...]
    source: str = ""
    category: str = ""
    context: str = ""
    response: str = ""

    def __post_init__(self):
        for start, end in self.instruction_spans:
            if not 0 <= start < end <= len(self.text):
                raise ValueError(f"instruction span ({start}, {end}) outside the prompt "
                                 f"of {len(self.text)} characters")

    @property
    def instruction(self) -> str:
        """The instruction part: the marked spans joined by newlines."""
        return "\n".join(self.text[a:b] for a, b in self.instruction_spans)
