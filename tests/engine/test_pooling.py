"""Pooling weights and pooled states: hand-computed weights, layer selection, early stop."""

import pytest
import torch
from tiny import tiny_lm, tiny_model, tiny_tokenizer

from tunescope.engine.batching import encode
from tunescope.engine.pooling import (
    normed_layer,
    pooled_states,
    pooling_weights,
    special_first,
)
from tunescope.errors import TunescopeError
from tunescope.models.lm import LM

TEXTS = ["The capital of France is Paris.", "Write a short poem about the sea.", "I",
         "Rome is in Italy, and Tokyo is in Japan."]


def test_pooling_weights_hand_computed():
    mask = torch.tensor([[0, 1, 1, 1], [0, 0, 0, 1], [0, 1, 1, 1]])
    drop = [True, True, False]                 # row 3 starts with a real word: kept
    w = {p: pooling_weights(mask, p, drop)[..., 0] for p in ("mean", "mean_all", "last")}
    third = [0, 1 / 3, 1 / 3, 1 / 3]
    torch.testing.assert_close(w["mean"], torch.tensor([[0, 0, .5, .5], [0, 0, 0, 1.], third]))
    torch.testing.assert_close(pooling_weights(mask, "mean")[..., 0],     # no flags: keep all
                               pooling_weights(mask, "mean_all")[..., 0])
    mask = mask[:2]
    w = {p: pooling_weights(mask, p)[..., 0] for p in ("mean_all", "last")}
    torch.testing.assert_close(w["mean_all"], torch.tensor([[0, 1 / 3, 1 / 3, 1 / 3], [0, 0, 0, 1.]]))
    torch.testing.assert_close(w["last"], torch.tensor([[0, 0, 0, 1.], [0, 0, 0, 1.]]))


def test_selected_layers_equal_the_full_run_and_stop_early():
    lm = tiny_lm("gemma3")
    ids = encode(lm, ["The capital of France is Paris.", "Write a poem", "I"])
    full = pooled_states(lm, ids, poolings=("mean", "last"))
    assert full["mean"].shape == (3, lm.anatomy.n_layers + 1, lm.anatomy.d_model)
    ran = []
    handles = [b.register_forward_hook(lambda *a, i=i: ran.append(i))
               for i, b in enumerate(lm.anatomy.blocks)]
    try:
        part = pooled_states(lm, ids, layers=[0, 2], poolings=("mean",))
    finally:
        for h in handles:
            h.remove()
    assert sorted(set(ran)) == [0, 1]  # hidden state 2 is block 1's output: nothing deeper ran
    torch.testing.assert_close(part["mean"], full["mean"][:, [0, 2]], atol=1e-6, rtol=0)


def test_bad_arguments():
    lm = tiny_lm("gpt2")
    with pytest.raises(TunescopeError, match="unknown pooling 'max'"):
        pooled_states(lm, [[1, 2]], poolings=("max",))
    with pytest.raises(TunescopeError, match="layers must lie in 0..4"):
        pooled_states(lm, [[1, 2]], layers=[5])
    with pytest.raises(TunescopeError, match="listed twice"):
        pooled_states(lm, [[1, 2]], poolings=("last", "last"))


def test_special_first_hand_computed():
    tok = tiny_tokenizer()
    bos, eos, pad = tok.bos_token_id, tok.eos_token_id, tok.pad_token_id
    word = tok("Paris", add_special_tokens=False)["input_ids"][0]
    assert special_first(tok, [[bos, word], [word, bos], [eos, word], [pad], [], [word]]) == [
        True, False, True, True, False, False]


def _hf_reference(model, tokenizer, text):
    """Independent of tunescope's hooks: per layer 0..n_layers + 1 the [T, d] hidden states of
    ``text`` run alone (HF's hidden states 0..n-1, the last block's output read by a plain
    forward hook, and HF's last hidden state, which is after the final norm), and its ids."""
    ids = tokenizer(text)["input_ids"]
    seen = []
    handle = model.model.layers[-1].register_forward_hook(
        lambda module, args, output: seen.append(output[0] if isinstance(output, tuple)
                                                 else output))
    try:
        with torch.inference_mode():
            hs = model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
    finally:
        handle.remove()
    states = [h[0] for h in hs[:-1]] + [seen[0][0], hs[-1][0]]
    return ids, torch.stack(states)                          # [n_layers + 2, T, d]


@pytest.mark.parametrize("bos", [True, False])
def test_mean_leaves_out_only_a_special_first_token(bos):
    """With a BOS-adding tokenizer "mean" averages positions 1.. (hand-computed from plain HF
    hidden states); without BOS position 0 is a real word and is kept (= "mean_all"). The
    final-normed layer n_layers + 1 equals HF's last hidden state."""
    model, tok = tiny_model("llama"), tiny_tokenizer(bos=bos)
    lm = LM.from_hf(model, tok, name="tiny-llama", source="memory")
    n = lm.anatomy.n_layers
    ids = encode(lm, TEXTS)
    layers = list(range(n + 2))
    assert normed_layer(lm) == n + 1
    pooled = pooled_states(lm, ids, layers=layers, poolings=("mean", "mean_all", "last"),
                           batch_size=3)
    for i, text in enumerate(TEXTS):
        ref_ids, h = _hf_reference(model, tok, text)
        assert ref_ids == ids[i] and (ref_ids[0] == tok.bos_token_id) == bos
        first = 1 if bos and len(ref_ids) > 1 else 0
        torch.testing.assert_close(pooled["mean"][i], h[:, first:].mean(1), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(pooled["mean_all"][i], h.mean(1), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(pooled["last"][i], h[:, -1], atol=1e-5, rtol=1e-5)
    if not bos:
        torch.testing.assert_close(pooled["mean"], pooled["mean_all"])
