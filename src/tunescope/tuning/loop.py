"""The training loop of supervised instruction tuning: seeded batches, the loss on response
tokens only, AdamW, checkpoints that a killed run resumes from.

Loss of one batch: the mean, over the batch's response tokens (labels not
:data:`~tunescope.tuning.template.IGNORE`), of the cross-entropy of the token given everything
before it. The output projection (the largest matrix of a small model: 262,144 x 640 for Gemma 3
270M) is applied only at the positions that predict a response token, never to the whole
sequence; the model's final logit soft-capping is applied where it has one.

Determinism: the data order is a seeded permutation per epoch, LoRA has no dropout and the
models run in eval mode, so a step is a function of the weights, the optimiser state and the
batch. A checkpoint holds all three (the trainable parameters and the AdamW moments in
safetensors, the step in JSON), so a resumed run takes exactly the steps an uninterrupted run
takes and ends with the same weights (on the same machine, with the same number of threads).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tunescope.common.atomic import make_temp_dir, replace_dir
from tunescope.errors import TunescopeError
from tunescope.tuning.config import TuneConfig
from tunescope.tuning.template import IGNORE, EncodedExample


class TuningDiverged(TunescopeError):
    """The loss became NaN or infinite."""


CHECKPOINT = "checkpoint"
"""The checkpoint folder's name inside the run's work folder."""


# --- batches and schedule ------------------------------------------------------------------------
def schedule(n_examples: int, config: TuneConfig) -> list[list[int]]:
    """The example indices of each optimiser step: per epoch a permutation seeded by
    (seed, epoch), cut into batches of ``batch_size`` (the last one may be smaller);
    ``config.steps`` steps when given (epochs repeat as needed), else ``config.epochs``
    epochs."""
    if n_examples < 1:
        raise TunescopeError("no examples to tune on")
    steps: list[list[int]] = []
    epoch = 0
    while (epoch < config.epochs) if config.steps is None else (len(steps) < config.steps):
        order = np.random.default_rng([config.seed, epoch]).permutation(n_examples)
        steps += [order[i:i + config.batch_size].tolist()
                  for i in range(0, n_examples, config.batch_size)]
        epoch += 1
    return steps if config.steps is None else steps[:config.steps]


def learning_rate(step: int, total: int, config: TuneConfig) -> float:
    """Learning rate of optimiser step ``step`` (0-based) of ``total``: linear warm-up over
    ``warmup_steps`` steps to ``config.lr``, then linear decay that reaches zero after the last
    step."""
    warm = min(config.warmup_steps, max(total - 1, 0))
    if step < warm:
        return config.lr * (step + 1) / warm
    return config.lr * (total - step) / max(total - warm, 1)


def collate(examples: Sequence[EncodedExample], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids`` and ``labels`` ([batch, longest], int64; labels IGNORE at
    padding) and ``attention_mask`` (1 at tokens, 0 at padding)."""
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


# --- the loss ------------------------------------------------------------------------------------
def response_loss(model, batch: dict[str, torch.Tensor], softcap: float | None = None
                  ) -> tuple[torch.Tensor, int]:
    """(mean cross-entropy over the batch's response tokens, their number).

    ``model``: a Hugging Face causal LM (LoRA layers injected or not); the decoder runs on the
    whole batch, the output projection only on the [n_response, d_model] hidden states that
    predict a response token."""
    decoder, head = model.get_decoder(), model.get_output_embeddings()
    hidden = decoder(input_ids=batch["input_ids"],
                     attention_mask=batch["attention_mask"]).last_hidden_state
    targets = batch["labels"][:, 1:]
    chosen = targets != IGNORE
    logits = head(hidden[:, :-1][chosen])
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    n = int(chosen.sum())
    return F.cross_entropy(logits.float(), targets[chosen], reduction="sum") / max(n, 1), n


def autocast(device: torch.device, precision: str):
    """The autocast context of ``precision`` on ``device`` (a no-op for float32)."""
    if precision == "bfloat16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"auto"`` -> ``"bfloat16"`` on a GPU that supports it or a CPU with native bfloat16
    arithmetic (AVX512-BF16 or AMX), ``"float32"`` otherwise."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    native = bool((check and check()) or (amx and amx()))
    return "bfloat16" if native else "float32"


# --- checkpoints ---------------------------------------------------------------------------------
@dataclass
class TrainState:
    """Where a run stands: steps done, per-step mean loss and response tokens, tokens seen,
    seconds spent."""

    step: int = 0
    losses: list[float] = field(default_factory=list)
    response_tokens: list[int] = field(default_factory=list)
    tokens: int = 0
    seconds: float = 0.0


def trainable(model) -> list[tuple[str, torch.nn.Parameter]]:
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def save_checkpoint(folder: Path, model, optimizer, state: TrainState, key: str) -> None:
    """Write the trainable parameters, the AdamW moments and ``state`` to ``folder`` (a new
    folder renamed into place: a checkpoint is complete or absent)."""
    from safetensors.torch import save_file


    params = trainable(model)
    tensors = {}
    for i, (name, p) in enumerate(params):
        tensors[f"param.{name}"] = p.detach().contiguous()
        moments = optimizer.state.get(p, {})
        for moment in ("exp_avg", "exp_avg_sq", "step"):
            if moment in moments:
                value = moments[moment]
                value = value if torch.is_tensor(value) else torch.tensor(float(value))
                tensors[f"{moment}.{name}"] = value.detach().reshape(value.shape).contiguous()
    tmp = make_temp_dir(folder.parent, folder.name)
    save_file(tensors, str(tmp / "state.safetensors"))
    (tmp / "state.json").write_text(json.dumps({"key": key, **state.__dict__}))
    replace_dir(tmp, folder)


def load_checkpoint(folder: Path, model, optimizer, key: str) -> TrainState | None:
    """Restore a checkpoint written by :func:`save_checkpoint` for the run ``key`` into
    ``model`` and ``optimizer``; None when there is none (or it belongs to another run)."""
    from safetensors.torch import load_file

    meta_path = folder / "state.json"
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text())
    if meta.pop("key", None) != key:
        return None
    tensors = load_file(str(folder / "state.safetensors"))
    with torch.no_grad():
        for name, p in trainable(model):
            p.copy_(tensors[f"param.{name}"])
            if f"exp_avg.{name}" in tensors:
                optimizer.state[p] = {
                    "step": tensors[f"step.{name}"].clone(),
                    "exp_avg": tensors[f"exp_avg.{name}"].clone(),
                    "exp_avg_sq": tensors[f"exp_avg_sq.{name}"].clone()}
    return TrainState(**meta)


# --- the loop ------------------------------------------------------------------------------------
def train(model, encoded: Sequence[EncodedExample], config: TuneConfig, *, pad_id: int,
          softcap: float | None = None, work: Path | None = None, key: str = "",
          on_step: Callable[[TrainState, float], None] | None = None,
          plan: list[list[int]] | None = None) -> TrainState:
    """Tune ``model`` (its trainable parameters) on ``encoded`` examples per ``config``.

    ``work``: folder for checkpoints (every ``checkpoint_every`` steps and at the end); a
    checkpoint of the same run ``key`` found there is resumed. ``on_step(state, seconds)`` is
    called after each step. ``plan``: the example indices of each step (default
    :func:`schedule`). Returns the final :class:`TrainState`."""
    device = next(model.parameters()).device
    precision = resolve_precision(config.precision, device)
    params = [p for _, p in trainable(model)]
    if not params:
        raise TunescopeError("the model has no trainable parameters")
    optimizer = torch.optim.AdamW(params, lr=config.lr, betas=(0.9, 0.999), eps=1e-8,
                                  weight_decay=config.weight_decay, foreach=False)
    plan = plan if plan is not None else schedule(len(encoded), config)
    folder = work / CHECKPOINT if work is not None else None
    state = (load_checkpoint(folder, model, optimizer, key) if folder else None) or TrainState()
    for step in range(state.step, len(plan)):
        start = time.perf_counter()
        batch = {k: v.to(device) for k, v in
                 collate([encoded[i] for i in plan[step]], pad_id).items()}
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, len(plan), config)
        with autocast(device, precision):
            loss, n_response = response_loss(model, batch, softcap)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise TuningDiverged(f"the loss became {value} at step {step + 1}; lower the "
                                 "learning rate")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm, foreach=False)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - start
        state.step = step + 1
        state.losses.append(value)
        state.response_tokens.append(n_response)
        state.tokens += int(batch["attention_mask"].sum())
        state.seconds += seconds
        if on_step is not None:
            on_step(state, seconds)
        if folder is not None and (state.step % config.checkpoint_every == 0
                                   or state.step == len(plan)):
            save_checkpoint(folder, model, optimizer, state, key)
    return state
