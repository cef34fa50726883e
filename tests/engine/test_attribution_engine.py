"""Batched per-token gradients equal a one-backward-per-token loop (W1 engine)."""

import pytest
import torch
from tiny import tiny_lm

from tunescope.engine.attribution import gradient_x_input


def _loop(lm, prompt_ids, response_ids):
    """The reference: one backward pass per response token through the full logits."""
    ids = torch.tensor([list(prompt_ids) + list(response_ids)])
    P = len(prompt_ids)
    with torch.enable_grad():
        embeds = lm.anatomy.embed(ids).detach().requires_grad_(True)
        logits = lm.model(inputs_embeds=embeds).logits[0]
        columns = []
        for t, y in enumerate(response_ids):
            p = torch.softmax(logits[P + t - 1], -1)[y]
            (g,) = torch.autograd.grad(p, embeds, retain_graph=True)
            columns.append((g[0, :P] * embeds[0, :P]).sum(-1))
    return torch.stack(columns, 1).detach()


@pytest.mark.parametrize("family", ["llama", "gemma3", "gpt2"])
@pytest.mark.parametrize("chunk", [1, 4, 64])
def test_batched_gradients_equal_loop(family, chunk):
    lm = tiny_lm(family)
    prompt = lm.tokenizer("Write a short poem about the sea.")["input_ids"]
    response = lm.tokenizer("The sea is blue and wonderful", add_special_tokens=False)["input_ids"]
    got = gradient_x_input(lm, prompt, response, chunk=chunk)
    ref = _loop(lm, prompt, response)
    assert got.shape == (len(prompt), len(response))
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-7)
    assert got.abs().max() > 0
    assert not any(p.requires_grad for p in lm.model.parameters())


def test_empty_response():
    lm = tiny_lm("llama")
    assert gradient_x_input(lm, [1, 5, 6], []).shape == (3, 0)
