"""Anatomy: standard names and per-head weights match what each architecture computes."""

import pytest
import torch
from tiny import tiny_lm

from tunescope.errors import UnsupportedArchitectureError
from tunescope.models.anatomy import FAMILIES, Anatomy, check_supported
from tunescope.models.hooks import trace

EXPECTED = {  # family: (layers, d_model, heads, kv heads, d_head, d_mlp)
    "llama": (3, 48, 6, 2, 8, 96), "gemma2": (3, 32, 4, 2, 16, 64),
    "gemma3": (4, 32, 4, 1, 16, 64), "gpt2": (3, 32, 4, 4, 8, 128),
    "gpt_neox": (3, 32, 4, 4, 8, 64),
}


def test_sizes(lm, family):
    a = lm.anatomy
    assert (a.n_layers, a.d_model, a.n_heads, a.n_kv_heads, a.d_head, a.d_mlp) == EXPECTED[family]
    assert a.vocab_size == 320
    assert a.mlp_down_weight(0).shape == (a.d_mlp, a.d_model)
    hw = a.head_weights(1)
    assert hw.W_Q.shape == (a.n_heads, a.d_model, a.d_head)
    assert hw.W_K.shape == hw.W_V.shape == (a.n_kv_heads, a.d_model, a.d_head)
    assert hw.W_O.shape == (a.n_heads, a.d_head, a.d_model)


def _qkv_from_module(lm, layer, x):
    """Queries, keys and values as the model's own projection modules compute them (no bias)."""
    a = lm.anatomy
    B, T, _ = x.shape
    H, Hkv, d = a.n_heads, a.n_kv_heads, a.d_head
    if a.spec.qkv == "separate":
        q, k, v = a.q_proj(layer)(x), a.k_proj(layer)(x), a.v_proj(layer)(x)
    elif a.spec.qkv == "gpt2":
        attn = a.attn(layer)
        q, k, v = (x @ attn.c_attn.weight).split(H * d, dim=-1)
    else:
        fused = x @ a.attn(layer).query_key_value.weight.T
        fused = fused.view(B, T, H, 3 * d)
        q, k, v = (fused[..., i * d:(i + 1) * d].reshape(B, T, H * d) for i in range(3))
    return q.view(B, T, H, d), k.view(B, T, Hkv, d), v.view(B, T, Hkv, d)


@torch.no_grad()
def test_head_weights_reproduce_projections(lm):
    a = lm.anatomy
    x = torch.randn(2, 5, a.d_model)
    for layer in range(a.n_layers):
        hw = a.head_weights(layer, fold_norms=False)
        q, k, v = _qkv_from_module(lm, layer, x)
        torch.testing.assert_close(torch.einsum("btm,hmd->bthd", x, hw.W_Q), q)
        torch.testing.assert_close(torch.einsum("btm,hmd->bthd", x, hw.W_K), k)
        torch.testing.assert_close(torch.einsum("btm,hmd->bthd", x, hw.W_V), v)
        z = torch.randn(2, 5, a.n_heads, a.d_head)
        o = a.o_proj(layer)
        direct = o(z.reshape(2, 5, -1))
        bias = getattr(o, "bias", None)
        via_heads = torch.einsum("bthd,hdm->btm", z, hw.W_O) + (0 if bias is None else bias)
        torch.testing.assert_close(via_heads, direct)


@torch.no_grad()
def test_mlp_down_weight_is_what_neurons_write(lm):
    a = lm.anatomy
    acts = torch.randn(3, a.d_mlp)
    down = a.mlp_down_module(0)
    bias = getattr(down, "bias", None)
    expected = down(acts) - (0 if bias is None else bias)
    torch.testing.assert_close(acts @ a.mlp_down_weight(0, fold_norm=False), expected)


@torch.no_grad()
def test_folded_readings_scale_by_the_norm_gains(family):
    """W2/W3: Gemma 3's q_norm/k_norm gains are folded into W_Q/W_K per d_head component,
    Gemma 2/3's post-feed-forward norm gain into the down projection's d_model axis; other
    families' readings are the raw weights."""
    lm = tiny_lm(family)
    with torch.no_grad():
        for name, p in lm.model.named_parameters():
            if p.dim() == 1 and "norm" in name:
                p.normal_(0.5, 1.0)
    a = lm.anatomy
    for layer in range(a.n_layers):
        raw, hw = a.head_weights(layer, fold_norms=False), a.head_weights(layer)
        q_gain, k_gain = a.q_norm_gain(layer), a.k_norm_gain(layer)
        post_gain = a.mlp_post_norm_gain(layer)
        assert (q_gain is not None) == (k_gain is not None) == (family == "gemma3")
        assert (post_gain is not None) == (family in ("gemma2", "gemma3"))
        if q_gain is not None:
            blk = a.blocks[layer].self_attn
            torch.testing.assert_close(q_gain, blk.q_norm.weight + 1.0)
            torch.testing.assert_close(k_gain, blk.k_norm.weight + 1.0)
        torch.testing.assert_close(hw.W_Q, raw.W_Q * (1 if q_gain is None else q_gain))
        torch.testing.assert_close(hw.W_K, raw.W_K * (1 if k_gain is None else k_gain))
        assert torch.equal(hw.W_V, raw.W_V) and torch.equal(hw.W_O, raw.W_O)
        down = a.mlp_down_weight(layer, fold_norm=False)
        if post_gain is not None:
            torch.testing.assert_close(post_gain, a.mlp_out(layer).weight + 1.0)
        torch.testing.assert_close(a.mlp_down_weight(layer),
                                   down * (1 if post_gain is None else post_gain))


@torch.no_grad()
def test_residual_decomposes_into_sublayer_outputs(lm, family):
    """resid_post[l] = resid_pre[l] + attn_out[l] + mlp_out[l]: the anatomy names the modules
    whose outputs really are the residual contributions (Gemma's sandwich norms included)."""
    ids = lm.tokenizer(["The capital of France is Paris."], return_tensors="pt")
    with trace(lm, points=("embed", "resid_post", "attn_out", "mlp_out")) as tr:
        lm.model(**ids)
    prev = tr["embed"][0]
    for layer in range(lm.anatomy.n_layers):
        torch.testing.assert_close(prev + tr["attn_out"][layer] + tr["mlp_out"][layer],
                                   tr["resid_post"][layer], atol=1e-5, rtol=1e-5)
        prev = tr["resid_post"][layer]


@torch.no_grad()
def test_logit_lens_of_last_block_equals_model_logits(lm):
    ids = lm.tokenizer(["Translate the following sentence"], return_tensors="pt")
    with trace(lm, points=("resid_post",), layers=[lm.anatomy.n_layers - 1]) as tr:
        logits = lm.model(**ids).logits
    lens = lm.anatomy.logits(tr["resid_post"][lm.anatomy.n_layers - 1])
    torch.testing.assert_close(lens, logits, atol=1e-5, rtol=1e-5)


def test_supported_families_and_clear_error():
    assert {"llama", "mistral", "qwen2", "gemma2", "gemma3_text", "gpt2", "gpt_neox"} <= set(FAMILIES)
    check_supported("llama")
    with pytest.raises(UnsupportedArchitectureError, match="'bert' is not supported; supported: .*llama"):
        check_supported("bert")


def test_anatomy_rejects_unsupported_model():
    from transformers import BertConfig, BertLMHeadModel
    model = BertLMHeadModel(BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                       intermediate_size=32, vocab_size=50, is_decoder=True))
    with pytest.raises(UnsupportedArchitectureError, match="bert"):
        Anatomy(model)


def test_gemma2_softcap_is_applied_in_logit_lens():
    lm = tiny_lm("gemma2")
    assert lm.anatomy.logit_softcap == 30.0
    big = torch.full((1, lm.anatomy.d_model), 50.0)
    assert lm.anatomy.logits(big).abs().max() <= 30.0


@torch.no_grad()
def test_attention_norm_gain_reproduces_the_norm(lm):
    """norm(x) = gain * standardised x (plus bias for LayerNorm): the gain folded into W_Q/W_K."""
    a = lm.anatomy
    norm = a.ln_attn(1)
    with torch.no_grad():
        norm.weight.normal_(0.0, 0.5)
    x = torch.randn(4, a.d_model)
    out = norm(x)
    bias = getattr(norm, "bias", None)
    centred = x - x.mean(-1, keepdim=True) if bias is not None else x
    eps = getattr(norm, "eps", None) or getattr(norm, "variance_epsilon", 1e-6)
    scale = centred.pow(2).mean(-1, keepdim=True).add(eps).rsqrt()
    expected = centred * scale * a.ln_attn_gain(1) + (0 if bias is None else bias)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
