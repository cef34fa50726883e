"""Standard names for the parts of a decoder-only transformer, for every supported family.

Analyses never test a model's name: they ask the :class:`Anatomy` for the embedding, the blocks,
the attention and MLP of a block, the norms, the unembedding, and the per-head weights. All
architecture differences live in :data:`FAMILIES`.

Shapes use ``d_model`` (residual width), ``n_heads`` (query heads), ``n_kv_heads`` (key/value
heads, fewer under grouped-query attention), ``d_head`` and ``d_mlp`` (MLP width).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tunescope.errors import UnsupportedArchitectureError


@dataclass(frozen=True)
class FamilySpec:
    """Attribute paths of one architecture family (relative to the causal-LM module)."""

    embed: str
    blocks: str
    final_norm: str
    unembed: str
    attn: str
    mlp: str
    ln_attn: str            # norm applied to the residual before attention
    ln_mlp: str             # norm applied before the MLP
    attn_out: str           # module whose output is attention's contribution to the residual
    mlp_out: str            # module whose output is the MLP's contribution to the residual
    qkv: str                # "separate", "gpt2" (fused Conv1D) or "neox" (fused, per-head interleaved)
    q_proj: str | None = None
    k_proj: str | None = None
    v_proj: str | None = None
    o_proj: str | None = None
    mlp_in: str | None = None     # up projection (d_model -> d_mlp)
    mlp_gate: str | None = None   # gate projection of gated MLPs
    mlp_down: str | None = None   # down projection (d_mlp -> d_model)
    norm_offset: float = 0.0      # Gemma's RMSNorm multiplies by (1 + weight)


_LLAMA = FamilySpec(
    embed="model.embed_tokens", blocks="model.layers", final_norm="model.norm", unembed="lm_head",
    attn="self_attn", mlp="mlp", ln_attn="input_layernorm", ln_mlp="post_attention_layernorm",
    attn_out="self_attn", mlp_out="mlp", qkv="separate",
    q_proj="self_attn.q_proj", k_proj="self_attn.k_proj", v_proj="self_attn.v_proj",
    o_proj="self_attn.o_proj", mlp_in="mlp.up_proj", mlp_gate="mlp.gate_proj",
    mlp_down="mlp.down_proj",
)
# Gemma 2/3 normalise each sublayer's output before adding it to the residual ("sandwich" norms).
_GEMMA = FamilySpec(
    **{**_LLAMA.__dict__, "ln_mlp": "pre_feedforward_layernorm",
       "attn_out": "post_attention_layernorm", "mlp_out": "post_feedforward_layernorm",
       "norm_offset": 1.0})
_GPT2 = FamilySpec(
    embed="transformer.wte", blocks="transformer.h", final_norm="transformer.ln_f",
    unembed="lm_head", attn="attn", mlp="mlp", ln_attn="ln_1", ln_mlp="ln_2", attn_out="attn",
    mlp_out="mlp", qkv="gpt2", o_proj="attn.c_proj", mlp_in="mlp.c_fc", mlp_down="mlp.c_proj",
)
_NEOX = FamilySpec(
    embed="gpt_neox.embed_in", blocks="gpt_neox.layers", final_norm="gpt_neox.final_layer_norm",
    unembed="lm_head", attn="attention", mlp="mlp", ln_attn="input_layernorm",
    ln_mlp="post_attention_layernorm", attn_out="attention", mlp_out="mlp", qkv="neox",
    o_proj="attention.dense", mlp_in="mlp.dense_h_to_4h", mlp_down="mlp.dense_4h_to_h",
)

FAMILIES: dict[str, FamilySpec] = {
    "llama": _LLAMA, "mistral": _LLAMA, "qwen2": _LLAMA, "qwen3": _LLAMA,
    "gemma2": _GEMMA, "gemma3_text": _GEMMA,
    "gpt2": _GPT2, "gpt_neox": _NEOX,
}
"""Supported ``config.model_type`` values and their parts."""


def check_supported(model_type: str) -> None:
    """Raise :class:`UnsupportedArchitectureError` unless ``model_type`` has an anatomy."""
    if model_type not in FAMILIES:
        raise UnsupportedArchitectureError(
            f"architecture '{model_type}' is not supported; supported: {', '.join(sorted(FAMILIES))}")


def _get(root: nn.Module, path: str) -> nn.Module:
    for part in path.split("."):
        root = getattr(root, part)
    return root


@dataclass(frozen=True)
class HeadWeights:
    """Per-head attention weights of one layer, in the residual basis.

    ``W_Q``: [n_heads, d_model, d_head]; ``W_K``, ``W_V``: [n_kv_heads, d_model, d_head];
    ``W_O``: [n_heads, d_head, d_model]. ``h @ W_Q[i]`` is head i's query for a normalised
    residual vector ``h``. Biases and RoPE are not included.
    """

    W_Q: torch.Tensor
    W_K: torch.Tensor
    W_V: torch.Tensor
    W_O: torch.Tensor


class Anatomy:
    """The standard parts of one loaded causal LM (see module docstring)."""

    def __init__(self, model: nn.Module):
        config = model.config
        model_type = config.model_type
        check_supported(model_type)
        self.model = model
        self.family = model_type
        self.spec = FAMILIES[model_type]
        self.embed: nn.Embedding = _get(model, self.spec.embed)
        self.blocks: nn.ModuleList = _get(model, self.spec.blocks)
        self.final_norm: nn.Module = _get(model, self.spec.final_norm)
        self.unembed: nn.Linear = _get(model, self.spec.unembed)
        self.n_layers = len(self.blocks)
        self.d_model = self.embed.weight.shape[1]
        self.n_heads = getattr(config, "num_attention_heads", None) or config.n_head
        self.n_kv_heads = getattr(config, "num_key_value_heads", None) or self.n_heads
        self.d_head = getattr(config, "head_dim", None) or self.d_model // self.n_heads
        self.d_mlp = self.mlp_down_weight(0).shape[0]
        self.vocab_size = self.unembed.weight.shape[0]
        self.logit_softcap: float | None = getattr(config, "final_logit_softcapping", None)

    # -- modules of block l ------------------------------------------------------------------
    def _block_part(self, layer: int, path: str | None) -> nn.Module | None:
        return None if path is None else _get(self.blocks[layer], path)

    def attn(self, layer: int) -> nn.Module:
        """The attention module of block ``layer``."""
        return self._block_part(layer, self.spec.attn)

    def mlp(self, layer: int) -> nn.Module:
        """The MLP (feed-forward) module of block ``layer``."""
        return self._block_part(layer, self.spec.mlp)

    def ln_attn(self, layer: int) -> nn.Module:
        """The pre-attention norm of block ``layer``."""
        return self._block_part(layer, self.spec.ln_attn)

    def ln_mlp(self, layer: int) -> nn.Module:
        """The pre-MLP norm of block ``layer``."""
        return self._block_part(layer, self.spec.ln_mlp)

    def attn_out(self, layer: int) -> nn.Module:
        """The module whose output [batch, seq, d_model] is attention's residual contribution."""
        return self._block_part(layer, self.spec.attn_out)

    def mlp_out(self, layer: int) -> nn.Module:
        """The module whose output [batch, seq, d_model] is the MLP's residual contribution."""
        return self._block_part(layer, self.spec.mlp_out)

    def q_proj(self, layer: int) -> nn.Module | None:
        """Query projection, or None where q/k/v are fused (see :meth:`head_weights`)."""
        return self._block_part(layer, self.spec.q_proj)

    def k_proj(self, layer: int) -> nn.Module | None:
        """Key projection, or None where fused."""
        return self._block_part(layer, self.spec.k_proj)

    def v_proj(self, layer: int) -> nn.Module | None:
        """Value projection, or None where fused."""
        return self._block_part(layer, self.spec.v_proj)

    def o_proj(self, layer: int) -> nn.Module:
        """Output projection of the attention (d_model <- n_heads * d_head)."""
        return self._block_part(layer, self.spec.o_proj)

    def mlp_in(self, layer: int) -> nn.Module:
        """MLP up projection (d_model -> d_mlp)."""
        return self._block_part(layer, self.spec.mlp_in)

    def mlp_gate(self, layer: int) -> nn.Module | None:
        """MLP gate projection of gated MLPs, None otherwise."""
        return self._block_part(layer, self.spec.mlp_gate)

    def mlp_down_module(self, layer: int) -> nn.Module:
        """MLP down projection (d_mlp -> d_model)."""
        return self._block_part(layer, self.spec.mlp_down)

    # -- weights in a standard layout --------------------------------------------------------
    def ln_attn_gain(self, layer: int) -> torch.Tensor:
        """The pre-attention norm's multiplicative gain [d_model] (Gemma's ``1 + weight``
        included); the norm's bias, where it has one, is not part of it."""
        return self.ln_attn(layer).weight + self.spec.norm_offset

    def mlp_down_weight(self, layer: int) -> torch.Tensor:
        """Down-projection weight as [d_mlp (neurons), d_model]: row i is what neuron i writes."""
        w = self.mlp_down_module(layer).weight
        # nn.Linear stores [out, in]; GPT-2's Conv1D stores [in, out].
        return w if self.spec.qkv == "gpt2" else w.T

    def head_weights(self, layer: int) -> HeadWeights:
        """Per-head W_Q, W_K, W_V, W_O of block ``layer`` (see :class:`HeadWeights`)."""
        H, Hkv, d, D = self.n_heads, self.n_kv_heads, self.d_head, self.d_model
        if self.spec.qkv == "separate":
            wq = self.q_proj(layer).weight.T      # [D, H*d]
            wk = self.k_proj(layer).weight.T
            wv = self.v_proj(layer).weight.T
            wo = self.o_proj(layer).weight.T      # [H*d, D]
        elif self.spec.qkv == "gpt2":
            w = self._block_part(layer, "attn.c_attn").weight   # Conv1D: [D, 3*D]
            wq, wk, wv = w.split(H * d, dim=1)
            wo = self.o_proj(layer).weight        # Conv1D: [H*d, D]
        else:  # neox: output features ordered (head, {q,k,v}, d_head)
            w = self._block_part(layer, "attention.query_key_value").weight.T.reshape(D, H, 3, d)
            wq, wk, wv = (w[:, :, i, :].reshape(D, H * d) for i in range(3))
            wo = self.o_proj(layer).weight.T
        return HeadWeights(
            W_Q=wq.reshape(D, H, d).permute(1, 0, 2),
            W_K=wk.reshape(D, Hkv, d).permute(1, 0, 2),
            W_V=wv.reshape(D, Hkv, d).permute(1, 0, 2),
            W_O=wo.reshape(H, d, D),
        )

    # -- reading the residual stream ---------------------------------------------------------
    def logits(self, resid: torch.Tensor) -> torch.Tensor:
        """Logit lens: final norm, unembedding (and final soft-capping where the model has it).

        ``resid``: [..., d_model] residual-stream vectors -> [..., vocab] logits.
        """
        logits = self.unembed(self.final_norm(resid))
        if self.logit_softcap:
            logits = torch.tanh(logits / self.logit_softcap) * self.logit_softcap
        return logits
