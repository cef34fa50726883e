"""C4 (Geva et al. 2023) against independent reference implementations written from the
definitions (METHODS.md C4) with plain transformers/torch code: tunescope's helpers for the
checked quantity are never called here; tunescope only picks the examples.

- Attention knockout, non-subject set: every position before the last that is not a subject
  token; position 0 is left out only when it is the BOS or another special token. Reference:
  an explicit 4-D additive mask built here, on an eager-attention copy of the model.
- Extraction rate: each sublayer output at the last position (taken by forward hooks on the HF
  modules) projected with the unembedding alone (``W_U h``, default) or through the final norm
  first (``W_U final_norm(h)``).
"""

import numpy as np
import pandas as pd
import pytest
import torch
from tiny import fact_relations, tiny_model, tiny_tokenizer, tiny_trained_lm

from tunescope.analyses import attention_knockout, extraction_rate, get
from tunescope.models.lm import LM

FAMILIES = ("llama", "gemma3")


# -- attention knockout ------------------------------------------------------------------------
def _model_and_lm(family: str, bos: bool):
    """The trained tiny model as a tunescope LM (SDPA) and an eager copy for the reference, both
    with a sliding window wider than any prompt: one 4-D mask serves every layer, so the
    reference cannot express Gemma's per-layer sliding window."""
    trained = tiny_trained_lm(family)
    reference = tiny_model(family, attn="eager")
    reference.load_state_dict(trained.model.state_dict())
    assert reference.config._attn_implementation == "eager"
    for model in (trained.model, reference):
        if getattr(model.config, "sliding_window", None):
            model.config.sliding_window = 4096
    lm = LM.from_hf(trained.model, tiny_tokenizer(bos=bos), name=f"tiny-{family}",
                    source="memory")
    return lm, reference


def _non_subject(ids: list[int], subject: tuple[int, int], tokenizer) -> list[int]:
    """The study's set, from the definition."""
    special = set(tokenizer.all_special_ids) | {tokenizer.bos_token_id}
    return [p for p in range(len(ids) - 1)
            if not subject[0] <= p <= subject[1] and not (p == 0 and ids[0] in special)]


@torch.no_grad()
def _probability(model, ids: list[int], blocked: list[int], target: int) -> float:
    """p(target) at the last position with the edges last -> ``blocked`` removed in every
    layer, through an explicit 4-D additive attention mask."""
    T = len(ids)
    allowed = torch.tril(torch.ones(T, T, dtype=torch.bool))
    allowed[T - 1, blocked] = False
    mask = torch.zeros(1, 1, T, T).masked_fill(~allowed, torch.finfo(torch.float32).min)
    logits = model(torch.tensor([ids]), attention_mask=mask).logits[0, -1]
    return float(torch.softmax(logits.float(), -1)[target])


@pytest.mark.parametrize("bos", [True, False], ids=["bos", "no_bos"])
@pytest.mark.parametrize("family", FAMILIES)
def test_non_subject_knockout_matches_reference(family, bos):
    lm, reference = _model_and_lm(family, bos)
    n_layers = len(reference.model.layers)
    # A window of 2 n + 1 layers covers every layer around every layer: each row of tunescope's
    # table then blocks the edges in all layers, as the single reference mask does.
    res = attention_knockout(lm, fact_relations(), get("attention_knockout").make_config(
        max_examples=8, window=2 * n_layers + 1))
    examples, per = res.tables["examples"], res.tables["per_example"]
    tok = lm.tokenizer
    first_word_matters = 0
    for ex in examples.itertuples():
        ids = tok(ex.prompt)["input_ids"]
        assert (ids[0] == tok.bos_token_id) == bos
        subject = (ex.subject_first, ex.subject_last)
        with torch.no_grad():
            target = int(reference(torch.tensor([ids])).logits[0, -1].argmax())
        clean = _probability(reference, ids, [], target)
        keys = _non_subject(ids, subject, tok)
        want = _probability(reference, ids, keys, target)
        rows = per[(per.example == ex.example) & (per.block == "non_subject")]
        assert len(rows) == n_layers
        np.testing.assert_allclose(rows["probability_base"], clean, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(rows["probability"], want, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(rows["relative_change"], 100 * (want - clean) / clean,
                                   rtol=1e-3, atol=1e-3)
        if not bos and subject[0] > 0:
            assert keys[0] == 0                   # a word at position 0 is blocked
            without_first = _probability(reference, ids, keys[1:], target)
            first_word_matters += abs(without_first - want) > 1e-4
    if not bos:   # else the test could not tell the study's set from one without position 0
        assert first_word_matters, "no example where the first word's edge changes p"


# -- extraction rate ---------------------------------------------------------------------------
EXTRACTION_FAMILIES = ("llama", "gemma2", "gemma3", "gpt2")
COMPONENTS = ("attn_out", "mlp_out", "resid_post")


def _extraction_lm(family: str) -> LM:
    """The trained tiny model with uneven final-norm gains (real models have them), so that the
    two projections disagree often."""
    lm = tiny_trained_lm(family)
    norm = lm.model.transformer.ln_f if family == "gpt2" else lm.model.model.norm
    gains = torch.exp(0.7 * torch.randn(norm.weight.shape, generator=torch.Generator().manual_seed(1)))
    with torch.no_grad():
        if family.startswith("gemma"):       # Gemma's RMSNorm multiplies by (1 + weight)
            norm.weight.copy_((1 + norm.weight) * gains - 1)
        else:
            norm.weight.mul_(gains)
    return lm


def _sublayer_modules(model, family):
    """(block, module whose output is attention's residual contribution, same for the MLP),
    per layer, from the HF module tree."""
    if family == "gpt2":
        return [(b, b.attn, b.mlp) for b in model.transformer.h]
    if family.startswith("gemma"):          # sandwich norms: the post-norms' outputs are added
        return [(b, b.post_attention_layernorm, b.post_feedforward_layernorm)
                for b in model.model.layers]
    return [(b, b.self_attn, b.mlp) for b in model.model.layers]


@torch.no_grad()
def _reference_top1(model, family, ids):
    """{(component, layer): (top-1 under "unembedding", top-1 under "final_norm")} at the last
    position, and the model's own prediction."""
    outputs = {}

    def keep(name, layer):
        def hook(module, args, output):
            h = output[0] if isinstance(output, tuple) else output
            outputs[name, layer] = h[0, -1].detach().clone()
        return hook

    handles = []
    for layer, (block, attn, mlp) in enumerate(_sublayer_modules(model, family)):
        handles += [attn.register_forward_hook(keep("attn_out", layer)),
                    mlp.register_forward_hook(keep("mlp_out", layer)),
                    block.register_forward_hook(keep("resid_post", layer))]
    try:
        final = model(torch.tensor([ids])).logits[0, -1]
    finally:
        for h in handles:
            h.remove()
    W_U = model.lm_head.weight                                 # [vocab, d_model]
    assert model.lm_head.bias is None
    if family.startswith("gemma") or family == "gpt2":       # tied to the (raw) input embedding
        embedding = (model.transformer.wte if family == "gpt2" else model.model.embed_tokens)
        assert W_U.data_ptr() == embedding.weight.data_ptr()
    norm = model.transformer.ln_f if family == "gpt2" else model.model.norm
    top = {key: (int((W_U @ h).argmax()), int((W_U @ norm(h)).argmax()))
           for key, h in outputs.items()}
    return top, int(final.argmax())


@pytest.mark.parametrize("family", EXTRACTION_FAMILIES)
def test_extraction_rate_matches_reference(family):
    lm = _extraction_lm(family)
    cfg = get("extraction_rate")
    n_layers = lm.model.config.num_hidden_layers
    expected = {"unembedding": [], "final_norm": []}
    for projection in expected:
        # the default first: it must be the unembedding alone
        overrides = {} if projection == "unembedding" else {"projection": projection}
        res = extraction_rate(lm, fact_relations(), cfg.make_config(max_examples=8, **overrides))
        for ex in res.tables["examples"].itertuples():
            ids = lm.tokenizer(ex.prompt)["input_ids"]
            top, prediction = _reference_top1(lm.model, family, ids)
            expected[projection] += [
                {"example": ex.example, "component": component, "layer": layer,
                 "top1": top[component, layer][list(expected).index(projection)],
                 "extraction": top[component, layer][list(expected).index(projection)] == prediction}
                for component in COMPONENTS for layer in range(n_layers)]
        want = (pd.DataFrame(expected[projection])
                .set_index(["example", "component", "layer"]).sort_index())
        got = res.tables["per_example"].set_index(["example", "component", "layer"]).sort_index()
        assert got.index.equals(want.index)
        assert got["top1"].tolist() == want["top1"].tolist(), projection
        assert got["extraction"].tolist() == want["extraction"].tolist(), projection
        rates = want.groupby(["layer", "component"])["extraction"].mean()
        table = res.tables["rates"].set_index(["layer", "component"])["rate"]
        np.testing.assert_allclose(table.loc[rates.index].to_numpy(), rates.to_numpy())
        assert res.summary["projection"] == projection
        assert res.provenance["config"]["projection"] == projection
    differ = (pd.DataFrame(expected["unembedding"])["top1"]
              != pd.DataFrame(expected["final_norm"])["top1"]).sum()
    assert differ > 0, "the two projections agree everywhere: the test would not tell them apart"
