"""Where tuning data comes from: ``builtin``, a file, or ``distill:MODEL``.

- ``builtin``: the train split of tunescope's own instruction set
  (:func:`tunescope.data.sft.builtin_sft`);
- a path: a JSONL/CSV/TSV file of (instruction, input, response) rows or chat messages
  (:func:`tunescope.data.sft.load_sft`); rows marked ``"split": "heldout"`` are left out (and
  counted in the recipe);
- ``distill:MODEL``: the built-in instructions answered by a teacher model (any model that
  :func:`tunescope.load` takes), greedily, through the teacher's chat template where it has one,
  the way Vicuna was made from ChatGPT's answers on ShareGPT. Empty answers are left out and
  counted; the answers are kept in the run's work folder, so a resumed run does not generate
  them again.

:func:`fingerprint` hashes the examples themselves (their messages, in order), so the same data
from any source has the same fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from tunescope.data import sft
from tunescope.errors import DataError

DISTILL = "distill:"


@dataclass(frozen=True)
class TuningData:
    """The examples of one data source. ``source``: what the user gave; ``name``: a short slug
    for folder names; ``details``: what else the recipe records (e.g. the teacher)."""

    source: str
    name: str
    examples: list
    details: dict = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.examples)


def fingerprint(examples) -> str:
    """sha256 (first 16 hex digits) of the examples' messages, in order."""
    digest = hashlib.sha256()
    for e in examples:
        digest.update(json.dumps([dict(m) for m in e.messages], sort_keys=True,
                                 ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()[:16]


def slug(source: str) -> str:
    """A folder-friendly name of a data source (``builtin``, a file's stem, ``distill-<model>``)."""
    if source.startswith(DISTILL):
        text = "distill-" + Path(source[len(DISTILL):].rstrip("/")).name
    elif source == "builtin":
        text = "builtin"
    else:
        text = Path(source).stem
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text).strip("-.") or "data"


def resolve(source: str, *, work: Path | None = None, max_examples: int | None = None,
            distill_tokens: int = 128, device: str | None = None) -> TuningData:
    """The examples of ``source`` (see the module docstring). ``max_examples``: keep the first
    n; ``distill_tokens``: the most tokens of a teacher's answer; ``work``: where a teacher's
    answers are kept between runs."""
    if not isinstance(source, str) or not source.strip():
        raise DataError("no tuning data given (builtin, a file, or distill:MODEL)")
    if source == "builtin":
        examples = sft.builtin_sft("train")
        details = {"split": "train"}
    elif source.startswith(DISTILL):
        return distill(source[len(DISTILL):], work=work, max_examples=max_examples,
                       max_new_tokens=distill_tokens, device=device)
    else:
        path = Path(source).expanduser()
        if not path.exists():
            raise DataError("no such file (tuning data is builtin, a JSONL/CSV/TSV file, or "
                            "distill:MODEL)", path=str(path))
        examples = sft.load_sft(path)
        held_out = sum(e.split == "heldout" for e in examples)
        examples = [e for e in examples if e.split != "heldout"]
        details = {"heldout_left_out": held_out} if held_out else {}
    if max_examples is not None:
        examples = examples[:max_examples]
    if not examples:
        raise DataError("no examples to tune on", path=source)
    return TuningData(source, slug(source), list(examples), details)


def distill(teacher: str, *, work: Path | None, max_examples: int | None,
            max_new_tokens: int, device: str | None) -> TuningData:
    """The built-in train instructions answered by ``teacher`` (see the module docstring)."""
    from tunescope.engine.generation import generate_greedy
    from tunescope.models import loading

    if not teacher.strip():
        raise DataError("distill: needs a teacher model, e.g. distill:smollm2-135m-instruct")
    prompts = sft.builtin_sft("train")
    if max_examples is not None:
        prompts = prompts[:max_examples]
    cache = work / f"distill-{slug(teacher)}-{max_new_tokens}.jsonl" if work else None
    answers = _cached(cache, prompts)
    if answers is None:
        lm = loading.load(teacher, device=device)
        chat = lm.has_chat_template
        texts = [lm.format_prompt(_user_text(e), chat=chat) for e in prompts]
        outputs = generate_greedy(lm, texts, max_new_tokens=max_new_tokens,
                                  desc=f"distilling from {teacher}")
        answers = [o.text.strip() for o in outputs]
        if cache is not None:
            from tunescope.common.atomic import write_atomic
            write_atomic(cache, "".join(json.dumps({"id": e.id, "response": a}) + "\n"
                                        for e, a in zip(prompts, answers)).encode())
        details = {"teacher": teacher, "teacher_revision": lm.revision,
                   "teacher_chat_template": chat}
    else:
        details = {"teacher": teacher}
    examples = [sft.SFTExample(id=e.id, messages=(*e.messages[:-1],
                                                  {"role": "assistant", "content": a}),
                               category=e.category, split=e.split)
                for e, a in zip(prompts, answers) if a]
    details.update({"max_new_tokens": max_new_tokens, "prompts": len(prompts),
                    "empty_answers_left_out": len(prompts) - len(examples)})
    if not examples:
        raise DataError(f"the teacher {teacher!r} gave only empty answers")
    return TuningData(DISTILL + teacher, slug(DISTILL + teacher), examples, details)


def _user_text(example) -> str:
    return "\n\n".join(m["content"] for m in example.messages[:-1] if m["role"] == "user")


def _cached(cache: Path | None, prompts) -> list[str] | None:
    """A teacher's stored answers for exactly these prompts, or None."""
    if cache is None or not cache.is_file():
        return None
    try:
        rows = [json.loads(line) for line in cache.read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return None
    if [r.get("id") for r in rows] != [e.id for e in prompts]:
        return None
    return [str(r.get("response", "")) for r in rows]
