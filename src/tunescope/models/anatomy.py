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
    q_norm: str | None = None     # per-head norm of the projected queries (Gemma 3)
    k_norm: str | None = None     # per-head norm of the projected keys (Gemma 3)
    mlp_post_norm: str | None = None  # norm between the down projection and the residual


_LLAMA = FamilySpec(
    embed="model.embed_tokens", blocks="model.layers", final_norm="model.norm", unembed="lm_head",
    attn="self_attn", mlp="mlp", ln_attn="input_layernorm", ln_mlp="post_attention_layernorm",
    attn_out="self_attn", mlp_out="mlp", qkv="separate",
    q_proj="self_attn.q_proj", k_proj="self_attn.k_proj", v_proj="self_attn.v_proj",
    o_proj="self_attn.o_proj", mlp_in="mlp.up_proj", mlp_gate="mlp.gate_proj",
    mlp_down="mlp.down_proj",
)
# Gemma 2/3 normalise each sublayer's output before adding it to the residual ("sandwich" norms).
_GEMMA2 = FamilySpec(
    **{**_LLAMA.__dict__, "ln_mlp": "pre_feedforward_layernorm",
       "attn_out": "post_attention_layernorm", "mlp_out": "post_feedforward_layernorm",
       "mlp_post_norm": "post_feedforward_layernorm", "norm_offset": 1.0})
# Gemma 3 also RMS-normalises each head's projected query and key (q_norm / k_norm over d_head).
_GEMMA3 = FamilySpec(
    **{**_GEMMA2.__dict__, "q_norm": "self_attn.q_norm", "k_norm": "self_attn.k_norm"})
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
    "gemma2": _GEMMA2, "gemma3_text": _GEMMA3,
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


def _fold_last(w: torch.Tensor, gain: torch.Tensor | None) -> torch.Tensor:
    """``w`` with its last axis scaled by ``gain`` (computed in float32, ``w``'s dtype kept)."""
    if gain is None:
        return w
    return (w.float() * gain.float()).to(w.dtype)


@dataclass(frozen=True)
class HeadWeights:
    """Per-head attention weights of one layer, in the residual basis.

    ``W_Q``: [n_heads, d_model, d_head]; ``W_K``, ``W_V``: [n_kv_heads, d_model, d_head];
    ``W_O``: [n_heads, d_head, d_model]. ``h @ W_Q[i]`` is head i's query for a normalised
    residual vector ``h`` (after the pre-attention norm: its gain is *not* folded in here, see
    :meth:`Anatomy.ln_attn_gain`). Where the model normalises each head's query/key (Gemma 3's
    ``q_norm``/``k_norm``), the elementwise gain of that norm is folded into the d_head columns
    of W_Q/W_K (see :meth:`Anatomy.head_weights`). Biases and RoPE are not included.
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
        self.d_mlp = self.mlp_down_weight(0, fold_norm=False).shape[0]
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

    def _gain(self, layer: int, path: str | None) -> torch.Tensor | None:
        """Multiplicative gain of the norm at ``path`` in block ``layer`` (None if no norm)."""
        if path is None:
            return None
        return self._block_part(layer, path).weight + self.spec.norm_offset

    def q_norm_gain(self, layer: int) -> torch.Tensor | None:
        """Gain [d_head] of the per-head query norm (Gemma 3's ``q_norm``; ``1 + weight``),
        None where the architecture has no such norm."""
        return self._gain(layer, self.spec.q_norm)

    def k_norm_gain(self, layer: int) -> torch.Tensor | None:
        """Gain [d_head] of the per-head key norm (Gemma 3's ``k_norm``), None if absent."""
        return self._gain(layer, self.spec.k_norm)

    def mlp_post_norm_gain(self, layer: int) -> torch.Tensor | None:
        """Gain [d_model] of the norm between the MLP's down projection and the residual stream
        (Gemma 2/3's ``post_feedforward_layernorm``; ``1 + weight``), None if absent."""
        return self._gain(layer, self.spec.mlp_post_norm)

    def mlp_down_weight(self, layer: int, fold_norm: bool = True) -> torch.Tensor:
        """Down-projection weight as [d_mlp (neurons), d_model]: row i is what neuron i writes.

        With ``fold_norm`` (default; docs/methods.md#w3), the elementwise gain of a norm between the
        down projection and the residual stream is folded into the d_model axis: Gemma 2/3
        normalise the MLP output with ``post_feedforward_layernorm`` before adding it, so
        ``W[i, j] * gain[j]``. Only the gain is folded: that norm also divides each token's
        MLP output by its RMS, a per-token scale that is not linear and stays out (the folded
        rows are what neurons write up to that per-token scale). GPT-2, GPT-NeoX and
        Llama-style models (Llama, Mistral, Qwen) add the down projection's output to the
        residual directly, so their reading is the raw weight. ``fold_norm=False``: the raw
        weight for every architecture."""
        w = self.mlp_down_module(layer).weight
        # nn.Linear stores [out, in]; GPT-2's Conv1D stores [in, out].
        w = w if self.spec.qkv == "gpt2" else w.T
        return _fold_last(w, self.mlp_post_norm_gain(layer)) if fold_norm else w

    def head_weights(self, layer: int, fold_norms: bool = True) -> HeadWeights:
        """Per-head W_Q, W_K, W_V, W_O of block ``layer`` (see :class:`HeadWeights`).

        With ``fold_norms`` (default; docs/methods.md#w2), the elementwise gains of Gemma 3's
        per-head ``q_norm``/``k_norm`` (RMSNorm over d_head of each projected query/key,
        multiplying by ``1 + weight``) are folded into the d_head columns of every head's W_Q
        and W_K: ``W_Q[h][:, i] * q_gain[i]``. Only the gain is folded: the normalisation itself
        (dividing each head's query/key by its RMS) is not linear and stays out, so
        ``h @ W_Q[i]`` equals q_norm's output up to that per-token, per-head scale. Families
        without such norms (GPT-2, GPT-NeoX, Llama-style, Gemma 2) are unchanged. The
        pre-attention norm's gain is not folded here (:meth:`ln_attn_gain`). W_V and W_O are
        never folded. ``fold_norms=False``: the raw projections."""
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
        W_Q = wq.reshape(D, H, d).permute(1, 0, 2)
        W_K = wk.reshape(D, Hkv, d).permute(1, 0, 2)
        if fold_norms:
            W_Q = _fold_last(W_Q, self.q_norm_gain(layer))
            W_K = _fold_last(W_K, self.k_norm_gain(layer))
        return HeadWeights(
            W_Q=W_Q, W_K=W_K,
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
