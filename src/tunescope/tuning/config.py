"""The recipe of a tuning run: method and hyperparameters (:class:`TuneConfig`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from tunescope.errors import TunescopeError

METHODS = ("lora", "full")


class TuneConfigError(TunescopeError, ValueError):
    """A tuning setting out of range (one line naming it)."""


@dataclass(frozen=True)
class TuneConfig:
    """Hyperparameters of supervised instruction tuning.

    method: ``"lora"`` (low-rank adapters on every linear layer of the blocks, through
        ``peft``, merged into the weights at the end) or ``"full"`` (every parameter).
    rank, alpha: LoRA rank r and scale alpha (the update is ``alpha / r * B @ A``); no dropout,
        so that a step is a deterministic function of the weights and the batch.
    learning_rate: peak AdamW learning rate (None: 2e-4 for LoRA, 2e-5 for full tuning), reached
        after ``warmup_steps`` of linear warm-up, then decayed linearly to zero at the last step.
    epochs: passes over the data (each a fresh seeded shuffle); ``steps``, when given, is the
        number of optimiser steps instead (the data repeats as needed).
    batch_size: examples per optimiser step; ``max_length``: the most tokens of one example
        (longer examples are an error, never cut; None: the model's context).
    weight_decay, max_grad_norm: AdamW weight decay; gradient clipping (L2 norm of all
        trainable gradients).
    seed: the adapter's initialisation and the data order.
    precision: ``"auto"`` (bfloat16 autocast where the device supports it, float32 otherwise),
        ``"bfloat16"`` or ``"float32"``; weights and optimiser state stay float32 either way.
    checkpoint_every: optimiser steps between checkpoints (a killed run resumes from the last).
    """

    method: str = "lora"
    rank: int = 8
    alpha: float = 16.0
    learning_rate: float | None = None
    epochs: int = 1
    steps: int | None = None
    batch_size: int = 8
    max_length: int | None = 512
    warmup_steps: int = 10
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    seed: int = 0
    precision: str = "auto"
    checkpoint_every: int = 25

    def __post_init__(self):
        if self.method not in METHODS:
            raise TuneConfigError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.precision not in ("auto", "bfloat16", "float32"):
            raise TuneConfigError(f"precision must be auto, bfloat16 or float32, got {self.precision!r}")
        for name in ("rank", "epochs", "batch_size", "checkpoint_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise TuneConfigError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps < 1):
            raise TuneConfigError(f"steps must be a positive integer, got {self.steps!r}")
        if self.max_length is not None and self.max_length < 2:
            raise TuneConfigError(f"max_length must be at least 2, got {self.max_length!r}")
        if self.warmup_steps < 0 or self.weight_decay < 0 or self.max_grad_norm <= 0:
            raise TuneConfigError("warmup_steps and weight_decay must be >= 0, max_grad_norm > 0")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise TuneConfigError(f"learning_rate must be positive, got {self.learning_rate!r}")

    @property
    def lr(self) -> float:
        if self.learning_rate is not None:
            return float(self.learning_rate)
        return 2e-4 if self.method == "lora" else 2e-5

    def to_dict(self) -> dict:
        return {**asdict(self), "learning_rate": self.lr}

    @classmethod
    def from_dict(cls, raw: dict) -> "TuneConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise TuneConfigError(f"unknown tuning setting(s): {', '.join(unknown)}")
        return cls(**raw)
