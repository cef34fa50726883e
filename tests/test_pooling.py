"""Pooling weights and pooled states: hand-computed weights, layer selection, early stop."""

import pytest
import torch

from tiny import tiny_lm
from tunescope.engine.batching import encode
from tunescope.engine.pooling import pooled_states, pooling_weights
from tunescope.errors import TunescopeError


def test_pooling_weights_hand_computed():
    mask = torch.tensor([[0, 1, 1, 1], [0, 0, 0, 1]])
    w = {p: pooling_weights(mask, p)[..., 0] for p in ("mean", "mean_all", "last")}
    torch.testing.assert_close(w["mean"], torch.tensor([[0, 0, .5, .5], [0, 0, 0, 1.]]))
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
    with pytest.raises(TunescopeError, match="layers must lie in 0..3"):
        pooled_states(lm, [[1, 2]], layers=[4])
    with pytest.raises(TunescopeError, match="listed twice"):
        pooled_states(lm, [[1, 2]], poolings=("last", "last"))
