"""attribution (METHODS.md W1, after Wu et al. 2024): how much does each prompt token, and the
instruction part above all, drive the model's response?

Per prompt: greedy response (``max_new_tokens``) from the prompt as the model reads it (its
chat template's user turn where it has one, ``chat="auto"``), gradient x input of each response
token's probability with respect to every prompt token's embedding (BOS excluded), integer
levels (L), sparsification (b), density (p), per-example normalisation, and the instruction
score: see :mod:`tunescope.analyses.instruction_score`. An empty response (the model stops at
once) scores 0.0, as in the study's code, and is counted (``empty_response``,
``n_empty_responses``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from tunescope.analyses import instruction_score as score
from tunescope.analyses.registry import register
from tunescope.data.instructions import instruction_mask
from tunescope.data.types import InstructionPrompt
from tunescope.engine.attribution import gradient_x_input
from tunescope.engine.batching import repeated_bos
from tunescope.engine.generation import generate_greedy
from tunescope.engine.progress import progress
from tunescope.errors import TunescopeError
from tunescope.models.lm import LM
from tunescope.result import Result, fingerprint, provenance


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


@register("attribution", AttributionConfig, dataset="instructions")
def attribution(lm: LM, prompts: Sequence[InstructionPrompt],
                config: AttributionConfig = AttributionConfig()) -> Result:
    """Gradient attribution from prompt to response, and the instruction score (W1)."""
    start = time.perf_counter()
    if not prompts:
        raise TunescopeError("no instruction prompts given")
    chat = uses_chat(lm, config.chat)
    prompt_format = "chat" if chat else "raw"
    inputs = [model_input(lm, p, chat) for p in prompts]
    generations = generate_greedy(lm, [p.text for p in inputs], config.max_new_tokens,
                                  config.batch_size, desc=f"{lm.name}: responses")
    generated_s = time.perf_counter() - start
    per_prompt, density_rows, level_rows = [], [], []
    with progress(len(prompts), f"{lm.name}: attributions") as bar:
        for prompt, shown, gen in zip(prompts, inputs, generations):
            enc = lm.tokenizer(shown.text, return_offsets_mapping=True)
            cut = repeated_bos(lm, enc["input_ids"])      # a chat template that writes BOS
            ids, offsets = enc["input_ids"][cut:], enc["offset_mapping"][cut:]
            if list(ids) != list(gen.prompt_ids):
                raise RuntimeError("tokenisation differs between generation and attribution")
            rows = _rows_without_bos(lm, ids)
            mask = np.array(instruction_mask(shown, offsets), dtype=bool)[rows]
            raw = gradient_x_input(lm, ids, gen.token_ids, config.chunk).numpy()[rows]
            lv = score.levels(raw, config.L)
            # an empty response has no level: every density is 0 and the score 0.0 (the study)
            norm = score.normalise_density(score.density(score.sparsify(lv, config.b), config.p))
            value = score.instruction_score(norm, mask)
            pieces = [lm.tokenizer.decode([t]) for t in ids[rows]]
            per_prompt.append({
                "id": prompt.id, "source": prompt.source, "category": prompt.category,
                "n_prompt_tokens": len(pieces), "n_response_tokens": len(gen.token_ids),
                "n_instruction_tokens": int(mask.sum()), "instruction_score": value,
                "empty_response": not gen.token_ids, "prompt_format": prompt_format,
                "response": gen.text})
            density_rows += [{"id": prompt.id, "position": j, "token": piece,
                              "density": float(d), "instruction": bool(m)}
                             for j, (piece, d, m) in enumerate(zip(pieces, norm, mask))]
            nz = np.nonzero(lv)
            level_rows.append(pd.DataFrame({"id": prompt.id, "prompt_position": nz[0],
                                            "response_position": nz[1],
                                            "level": lv[nz].astype(np.int8)}))
            bar.advance()
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
    return Result("attribution",
                  {"per_prompt": table, "by_source": by_source,
                   "token_density": pd.DataFrame(density_rows),
                   "levels": pd.concat(level_rows, ignore_index=True)},
                  summary, provenance(lm, config, dataset, timings={
                      "generation_s": generated_s, "analysis_s": time.perf_counter() - start}))


def compare_instruction_scores(base: pd.DataFrame, tuned: pd.DataFrame) -> pd.DataFrame:
    """Per prompt source (and ``"all"``): mean/std/n of the instruction score of a base and a
    tuned model (``per_prompt`` tables) and the one-sided Welch t-test base < tuned."""
    rows = []
    sources = sorted(set(base["source"]) | set(tuned["source"]))
    for source in [*sources, "all"]:
        a = base if source == "all" else base[base["source"] == source]
        b = tuned if source == "all" else tuned[tuned["source"] == source]
        x, y = a["instruction_score"].dropna(), b["instruction_score"].dropna()
        t, p = score.welch_one_sided(x, y, alternative="less")
        rows.append({"source": source, "base_mean": x.mean(), "base_std": x.std(), "base_n": len(x),
                     "tuned_mean": y.mean(), "tuned_std": y.std(), "tuned_n": len(y),
                     "t": t, "p_base_less": p})
    return pd.DataFrame(rows)


def followed_vs_unfollowed(per_prompt: pd.DataFrame, followed: dict[str, bool]) -> pd.DataFrame:
    """Within one model: instruction scores of responses rated as following the instruction
    against those that did not (``followed``: prompt id -> bool), per source and ``"all"``,
    with the one-sided Welch t-test followed > unfollowed."""
    rated = per_prompt[per_prompt["id"].isin(followed)].assign(
        followed=lambda d: d["id"].map(followed))
    rows = []
    for source in [*sorted(set(rated["source"])), "all"]:
        sub = rated if source == "all" else rated[rated["source"] == source]
        f = sub.loc[sub["followed"], "instruction_score"].dropna()
        u = sub.loc[~sub["followed"], "instruction_score"].dropna()
        t, p = score.welch_one_sided(f, u, alternative="greater")
        rows.append({"source": source, "followed_mean": f.mean(), "followed_n": len(f),
                     "unfollowed_mean": u.mean(), "unfollowed_n": len(u), "t": t,
                     "p_followed_greater": p})
    return pd.DataFrame(rows)
