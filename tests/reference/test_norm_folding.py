"""Reference for METHODS.md W2/W3 norm folding: the folded weight readings of the anatomy
(``head_weights``, ``mlp_down_weight``) against the model's own forward pass.

Every elementwise norm gain between a weight and what it acts on is folded into the reading:
Gemma 3's per-head ``q_norm``/``k_norm`` gains into W_Q/W_K (W2), Gemma 2/3's
``post_feedforward_layernorm`` gain into the down projection (W3). The normalisation itself
(division by an RMS) is not linear: it is recomputed here, independently, from the raw
projections, and the folded reading must give the norm's output once divided by it.
Norm weights are set to random non-trivial values first (a fresh Gemma norm has gain 1).
"""

import pytest
import torch
from tiny import tiny_lm


def _randomise_norms(model, seed=1):
    """Give every norm weight random values (Gemma: gain 1 + w, so gains far from 1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, module in model.named_modules():
            w = getattr(module, "weight", None)
            if "norm" in name.rsplit(".", 1)[-1] and isinstance(w, torch.Tensor) and w.dim() == 1:
                w.copy_(torch.randn(w.shape, generator=g) * 2.0 + 1.5)


def _capture(model):
    """Run ``model`` on a fixed token sequence (the caller's hooks record what they need)."""
    ids = torch.tensor([[1, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50]])
    with torch.no_grad():
        model(input_ids=ids)


def _rms(x, eps):
    return x.pow(2).mean(-1, keepdim=True).add(eps).sqrt()


@pytest.fixture(scope="module")
def gemma3():
    lm = tiny_lm("gemma3")
    _randomise_norms(lm.model)
    return lm


@pytest.fixture(scope="module")
def gemma2():
    lm = tiny_lm("gemma2")
    _randomise_norms(lm.model)
    return lm


@torch.no_grad()
@pytest.mark.parametrize("layer", [0, 2, 3])
def test_gemma3_folded_wq_wk_give_q_norm_and_k_norm_outputs(gemma3, layer):
    model = gemma3.model
    attn = model.model.layers[layer].self_attn
    seen = {}

    def attn_input(module, args, kwargs):
        seen["x"] = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]

    hooks = [attn.register_forward_pre_hook(attn_input, with_kwargs=True),
             attn.q_norm.register_forward_hook(lambda m, i, o: seen.__setitem__("q", o)),
             attn.k_norm.register_forward_hook(lambda m, i, o: seen.__setitem__("k", o))]
    try:
        _capture(model)
    finally:
        for h in hooks:
            h.remove()
    x = seen["x"][0]                                     # [T, d_model], after input_layernorm
    d = attn.head_dim
    hw = gemma3.anatomy.head_weights(layer)
    for name, proj, norm, W in (("q", attn.q_proj, attn.q_norm, hw.W_Q),
                                ("k", attn.k_proj, attn.k_norm, hw.W_K)):
        raw = (x @ proj.weight.T).view(x.shape[0], -1, d)          # [T, heads, d] un-gained
        scale = _rms(raw, norm.eps)                                # the non-linear part
        folded = torch.einsum("tm,hmd->thd", x, W) / scale
        got = seen[name][0].transpose(0, 1)                        # [B, H, T, d] -> [T, H, d]
        torch.testing.assert_close(folded, got, atol=1e-4, rtol=1e-4, msg=name)
        # the gains really matter: the raw reading does not reproduce the norm's output
        assert not torch.allclose(raw / scale, got, atol=1e-2)


def _down_and_post_norm(lm, layer):
    block = lm.model.model.layers[layer]
    seen = {}
    hooks = [block.mlp.down_proj.register_forward_hook(
                 lambda m, i, o: seen.update(acts=i[0], down=o)),
             block.post_feedforward_layernorm.register_forward_hook(
                 lambda m, i, o: seen.__setitem__("post", o))]
    try:
        _capture(lm.model)
    finally:
        for h in hooks:
            h.remove()
    return seen["acts"][0], seen["down"][0], seen["post"][0], block.post_feedforward_layernorm


@torch.no_grad()
@pytest.mark.parametrize("family", ["gemma2", "gemma3"])
def test_gemma_folded_down_projection_gives_post_feedforward_norm_output(family, gemma2, gemma3):
    lm = {"gemma2": gemma2, "gemma3": gemma3}[family]
    for layer in range(lm.anatomy.n_layers):
        acts, down, post, norm = _down_and_post_norm(lm, layer)
        W = lm.anatomy.mlp_down_weight(layer)                       # [neurons, d_model]
        assert W.shape == (lm.anatomy.d_mlp, lm.anatomy.d_model)
        # per-token RMS of what the down projection itself writes (recomputed, un-gained)
        scale = _rms(acts @ lm.model.model.layers[layer].mlp.down_proj.weight.T, norm.eps)
        torch.testing.assert_close(acts @ W / scale, post, atol=1e-4, rtol=1e-4)
        # directions agree per token; the raw reading's do not
        cos = torch.nn.functional.cosine_similarity(acts @ W, post, dim=-1)
        torch.testing.assert_close(cos, torch.ones_like(cos), atol=1e-5, rtol=0)
        raw_cos = torch.nn.functional.cosine_similarity(down, post, dim=-1)
        assert raw_cos.min() < 0.999


@torch.no_grad()
def test_gemma2_has_no_qk_norm_so_head_weights_are_the_raw_projections(gemma2):
    attn = gemma2.model.model.layers[1].self_attn
    hw = gemma2.anatomy.head_weights(1)
    H, D, d = hw.W_Q.shape
    torch.testing.assert_close(hw.W_Q, attn.q_proj.weight.T.reshape(D, H, d).permute(1, 0, 2))
    Hkv = hw.W_K.shape[0]
    torch.testing.assert_close(hw.W_K, attn.k_proj.weight.T.reshape(D, Hkv, d).permute(1, 0, 2))


@torch.no_grad()
def test_llama_readings_are_unchanged_by_its_norms():
    """Llama adds the down projection's output to the residual directly and has no per-head
    query/key norms: with random norm weights, the readings are still the raw weights."""
    lm = tiny_lm("llama")
    _randomise_norms(lm.model)
    a = lm.anatomy
    for layer in range(a.n_layers):
        block = lm.model.model.layers[layer]
        assert torch.equal(a.mlp_down_weight(layer), block.mlp.down_proj.weight.T)
        hw = a.head_weights(layer)
        H, D, d = hw.W_Q.shape
        assert torch.equal(hw.W_Q,
                           block.self_attn.q_proj.weight.T.reshape(D, H, d).permute(1, 0, 2))
        Hkv = hw.W_K.shape[0]
        assert torch.equal(hw.W_K,
                           block.self_attn.k_proj.weight.T.reshape(D, Hkv, d).permute(1, 0, 2))
