"""The :class:`LM` type: a causal language model, its tokenizer, its anatomy and metadata."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from tunescope.models.anatomy import Anatomy


@dataclass
class LM:
    """A loaded causal LM ready for analysis.

    Attributes:
        model: the Hugging Face causal-LM module (eval mode, parameters frozen).
        tokenizer: its tokenizer; a pad token is always set.
        anatomy: standard names for the model's parts (:class:`Anatomy`).
        name: what the user asked for (bundled name, hub id, path).
        source: ``"bundled"``, ``"hub"``, ``"local"``, ``"gguf"`` or ``"memory"``.
        family: ``config.model_type`` (e.g. ``"llama"``, ``"gemma3_text"``).
        revision: hub revision or file fingerprint, when known.
    """

    model: torch.nn.Module
    tokenizer: object
    anatomy: Anatomy
    name: str
    source: str
    family: str
    revision: str | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_hf(cls, model, tokenizer, *, name: str, source: str = "memory",
                revision: str | None = None, **extra) -> "LM":
        """Wrap an already loaded HF model and tokenizer (freezes parameters, sets eval mode)."""
        model.eval()
        model.requires_grad_(False)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        return cls(model=model, tokenizer=tokenizer, anatomy=Anatomy(model), name=name,
                   source=source, family=model.config.model_type, revision=revision, extra=extra)

    @property
    def dtype(self) -> torch.dtype:
        """Parameter dtype (float32 on CPU by default)."""
        return next(self.model.parameters()).dtype

    @property
    def device(self) -> torch.device:
        """Device of the input embedding (where input ids must go)."""
        return self.anatomy.embed.weight.device

    @property
    def context_length(self) -> int | None:
        """The most tokens one input may hold (see :func:`context_length`); None: no known
        limit."""
        return context_length(getattr(self.model, "config", None))

    @property
    def has_chat_template(self) -> bool:
        """Whether the tokenizer carries a chat template (instruction-tuned models usually do)."""
        return bool(getattr(self.tokenizer, "chat_template", None))

    def format_prompt(self, text: str, chat: bool = False) -> str:
        """The text to feed the model: ``text`` itself (raw mode) or wrapped as one user turn
        by the chat template, ending where the assistant's answer begins."""
        if not chat:
            return text
        if not self.has_chat_template:
            raise ValueError(f"model '{self.name}' has no chat template; use raw prompts")
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)

    @property
    def metadata(self) -> dict:
        """JSON-ready description of the model, recorded in every Result's provenance."""
        return {
            "name": self.name, "source": self.source, "family": self.family,
            "revision": self.revision, "dtype": str(self.dtype).removeprefix("torch."),
            "device": str(self.device), "chat_template": self.has_chat_template,
            "n_layers": self.anatomy.n_layers, "d_model": self.anatomy.d_model,
            "n_heads": self.anatomy.n_heads, "n_kv_heads": self.anatomy.n_kv_heads,
            "d_head": self.anatomy.d_head,
            "n_params": sum(p.numel() for p in self.model.parameters()), **self.extra,
        }

    def __repr__(self) -> str:
        return f"LM({self.name!r}, family={self.family!r}, source={self.source!r}, dtype={self.dtype})"



_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length",
                 "n_ctx")
"""Config fields that name a model's context length, in order of preference."""


def _field(config, name: str):
    """``name`` of a config object or of a ``config.json`` mapping (None when absent)."""
    return config.get(name) if isinstance(config, dict) else getattr(config, name, None)


def context_length(config) -> int | None:
    """The most positions (tokens) one input of a model may hold, from its Hugging Face config
    (a ``PretrainedConfig`` or the mapping of its ``config.json``): the first of
    :data:`_CONTEXT_KEYS` it sets, also under ``text_config`` (multimodal configs). A YaRN or
    linear ``rope_scaling`` whose ``original_max_position_embeddings`` is that number stretches
    it by its ``factor``; a dynamic one has no fixed limit. None when no limit is known."""
    sections = [config, _field(config, "text_config")]
    for section in (s for s in sections if s is not None):
        for key in _CONTEXT_KEYS:
            value = _field(section, key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return _stretched(_field(section, "rope_scaling"), value)
    return None


def _stretched(scaling, positions: int) -> int | None:
    """``positions`` as stretched by a config's ``rope_scaling`` (see :func:`context_length`)."""
    if not isinstance(scaling, dict):
        return positions
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind == "dynamic":
        return None
    factor = scaling.get("factor")
    if (kind in ("linear", "yarn") and isinstance(factor, (int, float)) and factor > 1
            and scaling.get("original_max_position_embeddings") == positions):
        return int(positions * factor)
    return positions
