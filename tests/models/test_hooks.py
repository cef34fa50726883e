"""Hooks: attached without edits they change nothing; traces and knockouts behave exactly."""

import pytest
import torch
from tiny import FAMILIES, tiny_lm

from tunescope.engine.batching import left_pad
from tunescope.models.hooks import block_attention, trace

TEXTS = ["The capital of France is Paris.", "Write a short poem about the sea"]


def _batch(lm):
    ids = lm.tokenizer(TEXTS)["input_ids"]
    return left_pad(ids, lm.tokenizer.pad_token_id)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("family", FAMILIES)
@torch.no_grad()
def test_hooks_without_edits_leave_logits_bit_identical(family, attn):
    lm = tiny_lm(family, attn=attn)
    batch = _batch(lm)
    plain = lm.model(**batch.model_inputs()).logits
    with trace(lm, points=("embed", "resid_post", "attn_out", "mlp_out")):
        traced = lm.model(**batch.model_inputs()).logits
    empty = {l: torch.zeros(2, batch.input_ids.shape[1], batch.input_ids.shape[1], dtype=torch.bool)
             for l in range(lm.anatomy.n_layers)}
    with block_attention(lm, empty):
        knocked_nothing = lm.model(**batch.model_inputs()).logits
    assert torch.equal(plain, traced)
    assert torch.equal(plain, knocked_nothing)


@torch.no_grad()
def test_trace_positions_and_stop_early(lm):
    batch = _batch(lm)
    last = torch.tensor([batch.input_ids.shape[1] - 1] * 2)
    with trace(lm, points=("resid_post",)) as full:
        lm.model(**batch.model_inputs())
    out = "not reached"
    with trace(lm, points=("resid_post",), layers=[0, 1], positions=last, stop_early=True) as part:
        out = lm.model(**batch.model_inputs())
    assert out == "not reached"  # the forward pass stopped after block 1, before returning
    assert sorted(part["resid_post"]) == [0, 1]
    torch.testing.assert_close(part["resid_post"][1], full["resid_post"][1][:, -1], rtol=0, atol=0)
    pos = torch.tensor([[0, 2], [1, 3]])
    with trace(lm, points=("resid_post",), layers=[0], positions=pos) as sel:
        lm.model(**batch.model_inputs())
    assert sel["resid_post"][0].shape == (2, 2, lm.anatomy.d_model)
    assert torch.equal(sel["resid_post"][0][1, 1], full["resid_post"][0][1, 3])
    assert part.stack("resid_post").shape == (2, 2, lm.anatomy.d_model)


def test_trace_rejects_bad_arguments(lm):
    with pytest.raises(ValueError, match="unknown hook point"):
        with trace(lm, points=("resid_mid",)):
            pass
    with pytest.raises(ValueError, match="layers must lie"):
        with trace(lm, layers=[99]):
            pass


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("family", ["llama", "gemma3", "gpt_neox"])
@torch.no_grad()
def test_blocking_the_first_token_everywhere_equals_removing_it(family, attn):
    """With rotary positions only relative offsets matter, so cutting every edge to token 0 in
    every layer must give, at positions >= 1, exactly the outputs of the sequence without
    token 0. This checks the mask edit itself under both attention implementations."""
    lm = tiny_lm(family, attn=attn)
    ids = lm.tokenizer(["The capital of France is Paris."])["input_ids"][0]
    T = len(ids)
    edges = torch.zeros(1, T, T, dtype=torch.bool)
    edges[0, 1:, 0] = True
    with block_attention(lm, {l: edges for l in range(lm.anatomy.n_layers)}):
        knocked = lm.model(torch.tensor([ids])).logits[0, 1:]
    without = lm.model(torch.tensor([ids[1:]])).logits[0]
    torch.testing.assert_close(knocked, without, atol=1e-4, rtol=1e-4)
    plain = lm.model(torch.tensor([ids])).logits[0, 1:]
    assert not torch.allclose(plain, without, atol=1e-3)


@torch.no_grad()
def test_knockout_is_per_row_and_per_layer():
    """Rows of one batch carry different knockouts; each equals its own single-row run."""
    lm = tiny_lm("llama")
    ids = lm.tokenizer(["Paris is the capital of France, and Berlin"])["input_ids"][0]
    T = len(ids)
    x = torch.tensor([ids, ids, ids])
    edges = torch.zeros(3, T, T, dtype=torch.bool)
    edges[1, -1, 2:5] = True        # row 1: last token cannot see tokens 2..4
    edges[2, -1, T - 1] = True      # row 2: last token cannot see itself
    with block_attention(lm, {1: edges}):
        batched = lm.model(x).logits[:, -1]
    for r in range(3):
        with block_attention(lm, {1: edges[r:r + 1]}):
            single = lm.model(x[r:r + 1]).logits[0, -1]
        torch.testing.assert_close(batched[r], single, atol=1e-5, rtol=1e-5)
    assert torch.equal(batched[0], lm.model(x[:1]).logits[0, -1]) or torch.allclose(
        batched[0], lm.model(x[:1]).logits[0, -1], atol=1e-5)
    assert not torch.allclose(batched[0], batched[1], atol=1e-4)
    assert not torch.allclose(batched[0], batched[2], atol=1e-4)


def test_block_attention_validates_input(lm):
    with pytest.raises(ValueError, match="out of range"):
        with block_attention(lm, {99: torch.ones(1, 2, 2, dtype=torch.bool)}):
            pass
    with pytest.raises(ValueError, match="bool tensors"):
        with block_attention(lm, {0: torch.ones(1, 2, 2)}):
            pass
    ids = torch.tensor([lm.tokenizer("The capital")["input_ids"]])
    with pytest.raises(ValueError, match="do not match"):
        with block_attention(lm, {0: torch.ones(2, 9, 9, dtype=torch.bool)}):
            lm.model(ids)
