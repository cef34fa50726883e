"""attribution (docs/methods.md#w1, after Wu et al. 2024): how much does each prompt token, and the
instruction part above all, drive the model's response?

Three steps, each callable on its own (docs/methods.md#w1):

1. :func:`attribute`: per prompt, the greedy response (``max_new_tokens``) from the prompt as
   the model reads it (its chat template's user turn where it has one, ``chat="auto"``) and the
   raw gradient x input matrix [P, R] of each response token's probability with respect to
   every prompt token's embedding (BOS excluded);
2. :func:`score_prompt`: integer levels (L), sparsification (b), density (p) normalised per
   prompt, and the instruction score (:mod:`tunescope.analyses.helpers.instruction_score`);
3. the base-vs-tuned Welch tests: :mod:`tunescope.compare.attribution`.

:func:`attribution`, the registered analysis, runs 1 and 2 and tabulates them. An empty response
(the model stops at once) scores 0.0, as in the study's code, and is counted
(``empty_response``, ``n_empty_responses``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from tunescope.analyses.helpers import instruction_score as score
from tunescope.analyses.registry import register
from tunescope.analyses.skeleton import AnalysisRun
from tunescope.common.progress import progress
from tunescope.data.instructions import instruction_mask
from tunescope.data.types import InstructionPrompt
from tunescope.engine.attribution import gradient_x_input
from tunescope.engine.batching import repeated_bos
from tunescope.engine.generation import generate_greedy
from tunescope.errors import TunescopeError
from tunescope.models.lm import LM
from tunescope.result import Result, fingerprint


@dataclass(frozen=True)
class AttributionConfig:
    """W1 settings (defaults from the study).

    max_new_tokens: greedy response budget; L: attribution levels; b: sparsification threshold
    (levels <= b are zeroed); p: the norm of the density; chunk: response tokens per batched
    backward pass (bounds memory); chat: how prompts are shown to the model, ``"auto"`` (the
    model's chat template where it has one, the raw prompt otherwise), ``"chat"`` (always the
    chat template; an error for a model without one) or ``"raw"``; ``true``/``false`` are
    accepted for ``"chat"``/``"raw"`` (older studies) and stored as those strings.
    """

    max_new_tokens: int = 300
    L: int = score.L_LEVELS
    b: int = score.B_DEFAULT
    p: float = score.P_DEFAULT
    chunk: int = 16
    chat: str | bool = "auto"
    batch_size: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "chat", chat_mode(self.chat))


CHAT_MODES = ("auto", "chat", "raw")
"""The values of :attr:`AttributionConfig.chat`."""


def chat_mode(value) -> str:
    """``"auto"``, ``"chat"`` or ``"raw"`` from a config value (True means ``"chat"``, False
    ``"raw"``); ValueError for anything else."""
    if value is True or value is False:
        return "chat" if value else "raw"
    if isinstance(value, str) and value.strip().lower() in CHAT_MODES:
        return value.strip().lower()
    raise ValueError(f"chat must be one of {', '.join(CHAT_MODES)} (or true/false), "
                     f"got {value!r}")


def uses_chat(lm: LM, mode) -> bool:
    """Whether prompts go through ``lm``'s chat template under the chat ``mode``."""
    mode = chat_mode(mode)
    if mode == "chat" and not lm.has_chat_template:
        raise TunescopeError(f"model '{lm.name}' has no chat template: use chat: raw (or auto)")
    return mode == "chat" or (mode == "auto" and lm.has_chat_template)


def model_input(lm: LM, prompt: InstructionPrompt, chat: bool) -> InstructionPrompt:
    """The prompt as the model reads it (chat-wrapped when ``chat``), spans moved with the text.

    The user message is found in the formatted text; a template that trims the message (Gemma's
    does) has the spans clipped to the trimmed text."""
    text = lm.format_prompt(prompt.text, chat=chat)
    if text == prompt.text:
        return prompt
    core = prompt.text.strip()
    lead = len(prompt.text) - len(prompt.text.lstrip())
    shift = text.find(prompt.text)
    if shift >= 0:
        lead, core = 0, prompt.text
    elif core and (at := text.find(core)) >= 0:
        shift = at - lead
    else:
        raise TunescopeError(f"prompt {prompt.id}: the chat template changes the prompt's text; "
                             "use raw prompts (chat: raw)")
    spans = ((max(a, lead), min(b, lead + len(core))) for a, b in prompt.instruction_spans)
    return replace(prompt, text=text,
                   instruction_spans=tuple((a + shift, b + shift) for a, b in spans if b > a))


def _rows_without_bos(lm: LM, ids: Sequence[int]) -> slice:
    bos = lm.tokenizer.bos_token_id
    return slice(1, None) if bos is not None and ids and ids[0] == bos else slice(0, None)


@dataclass(frozen=True)
class PromptAttribution:
    """Step 1 of W1 for one prompt (:func:`attribute`).

    prompt: the prompt as given; shown: as the model read it (chat-wrapped under ``chat``);
    tokens: the prompt's tokens as text [P] (BOS excluded); instruction: [P] bool, the tokens
    inside the instruction spans; raw: gradient x input [P, R] (prompt token x response token,
    float32; R = 0 for an empty response); response: the greedy response's text and its token
    ids [R]."""

    prompt: InstructionPrompt
    shown: InstructionPrompt
    tokens: list[str]
    instruction: np.ndarray
    raw: np.ndarray
    response: str
    response_ids: list[int]


@dataclass(frozen=True)
class PromptScore:
    """Steps 2-3 of W1 for one prompt (:func:`score_prompt`): ``levels`` [P, R] int (before
    sparsification), ``density`` [P] (normalised, after sparsification) and the instruction
    ``score``."""

    levels: np.ndarray
    density: np.ndarray
    score: float


def attribute(lm: LM, prompts: Sequence[InstructionPrompt],
              config: AttributionConfig = AttributionConfig()) -> list[PromptAttribution]:
    """Step 1 of W1: each prompt's greedy response (``config.max_new_tokens``, the prompt shown
    as ``config.chat`` says) and the gradient x input of every response token's probability
    with respect to every prompt token's embedding (BOS excluded), batched over response tokens
    (``config.chunk`` per backward pass)."""
    if not prompts:
        raise TunescopeError("no instruction prompts given")
    chat = uses_chat(lm, config.chat)
    inputs = [model_input(lm, p, chat) for p in prompts]
    generations = generate_greedy(lm, [p.text for p in inputs], config.max_new_tokens,
                                  config.batch_size, desc=f"{lm.name}: responses")
    out = []
    with progress(len(prompts), f"{lm.name}: attributions") as bar:
        for prompt, shown, gen in zip(prompts, inputs, generations):
            enc = lm.tokenizer(shown.text, return_offsets_mapping=True)
            cut = repeated_bos(lm, enc["input_ids"])      # a chat template that writes BOS
            ids, offsets = enc["input_ids"][cut:], enc["offset_mapping"][cut:]
            if list(ids) != list(gen.prompt_ids):
                raise RuntimeError("tokenisation differs between generation and attribution")
            rows = _rows_without_bos(lm, ids)
            out.append(PromptAttribution(
                prompt=prompt, shown=shown,
                tokens=[lm.tokenizer.decode([t]) for t in ids[rows]],
                instruction=np.array(instruction_mask(shown, offsets), dtype=bool)[rows],
                raw=gradient_x_input(lm, ids, gen.token_ids, config.chunk).numpy()[rows],
                response=gen.text, response_ids=list(gen.token_ids)))
            bar.advance()
    return out


def score_prompt(attributed: PromptAttribution,
                 config: AttributionConfig = AttributionConfig()) -> PromptScore:
    """Steps 2-3 of W1: integer levels (``config.L``), sparsification (``config.b``), density
    (``config.p``) normalised per prompt, and the instruction score. An empty response has no
    level: every density is 0 and the score 0.0 (the study's rule)."""
    lv = score.levels(attributed.raw, config.L)
    norm = score.normalise_density(score.density(score.sparsify(lv, config.b), config.p))
    return PromptScore(lv, norm, score.instruction_score(norm, attributed.instruction))


@register("attribution", AttributionConfig, dataset="instructions")
def attribution(lm: LM, prompts: Sequence[InstructionPrompt],
                config: AttributionConfig = AttributionConfig()) -> Result:
    """Gradient attribution from prompt to response, and the instruction score (W1)."""
    run = AnalysisRun("attribution", lm, config)
    prompt_format = "chat" if uses_chat(lm, config.chat) else "raw"
    with run.stage("attribution_s"):
        attributed = attribute(lm, prompts, config)
    per_prompt, density_rows, level_rows = [], [], []
    for a in attributed:
        s = score_prompt(a, config)
        per_prompt.append({
            "id": a.prompt.id, "source": a.prompt.source, "category": a.prompt.category,
            "n_prompt_tokens": len(a.tokens), "n_response_tokens": len(a.response_ids),
            "n_instruction_tokens": int(a.instruction.sum()), "instruction_score": s.score,
            "empty_response": not a.response_ids, "prompt_format": prompt_format,
            "response": a.response})
        density_rows += [{"id": a.prompt.id, "position": j, "token": piece,
                          "density": float(d), "instruction": bool(m)}
                         for j, (piece, d, m) in enumerate(zip(a.tokens, s.density, a.instruction))]
        nz = np.nonzero(s.levels)
        level_rows.append(pd.DataFrame({"id": a.prompt.id, "prompt_position": nz[0],
                                        "response_position": nz[1],
                                        "level": s.levels[nz].astype(np.int8)}))
    table = pd.DataFrame(per_prompt)
    by_source = (table.groupby("source", sort=True)["instruction_score"]
                 .agg(mean="mean", std="std", n="count").reset_index())
    summary = {"mean_instruction_score": float(table["instruction_score"].mean()),
               "n_prompts": len(table), "n_empty_responses": int(table["empty_response"].sum()),
               "prompt_format": prompt_format,
               **{f"mean_score_{s}": float(m) for s, m in zip(by_source["source"], by_source["mean"])}}
    dataset = {"kind": "instructions", "size": len(prompts),
               "sources": sorted({p.source for p in prompts}),
               "fingerprint": fingerprint([[p.id, p.text, list(p.instruction_spans)] for p in prompts])}
    return run.result({"per_prompt": table, "by_source": by_source,
                       "token_density": pd.DataFrame(density_rows),
                       "levels": pd.concat(level_rows, ignore_index=True)},
                      summary, dataset)
