"""W2 base vs tuned: shares of changed units, joined and unpaired, and the verb test."""

import numpy as np
import pandas as pd
import pytest

from tunescope.analyses.heads_compare import _unpaired_share, compare_heads, depth_group

SHAPE = {"n_layers": 4, "n_heads": 2, "d_head": 3}


def _pairs(rows):
    return pd.DataFrame(rows, columns=["layer", "head", "dim", "word_q", "word_k"])


def test_joined_shares_hand_computed():
    base = _pairs([(0, 0, 0, "write", "text"), (0, 0, 1, "write", "poem"), (0, 1, 0, "go", "run")])
    tuned = _pairs([(0, 0, 0, "write", "text"), (0, 0, 0, "write", "essay"),   # unit (0,0,0): 1 -> 2
                    (0, 1, 2, "write", "x"),                                     # (0,1,2): 0 -> 1
                    (0, 1, 0, "go", "run")])                                     # unit (0,0,1): 1 -> 0
    shares, tests, method = compare_heads(base, tuned, SHAPE, SHAPE, ["write"], ["go", "run"])
    assert method == "joined"
    row = shares.set_index("word").loc["write"]
    assert (row["n_changed"], row["share_more_after_tuning"]) == (3, pytest.approx(2 / 3))
    assert "go" not in set(shares["word"])  # unchanged everywhere
    assert tests.loc[0, "instruction_n"] == 1 and tests.loc[0, "general_n"] == 0


@pytest.mark.parametrize("seed", range(20))
def test_unpaired_share_counts_every_pair_of_units(seed):
    """Against every (tuned unit, base unit) pair spelt out, zeros included."""
    rng = np.random.default_rng(seed)
    base_hits = rng.integers(1, 5, rng.integers(0, 12))
    tuned_hits = rng.integers(1, 5, rng.integers(0, 12))
    base_units = len(base_hits) + int(rng.integers(0, 9))
    tuned_units = len(tuned_hits) + int(rng.integers(0, 9))
    y = np.concatenate([base_hits, np.zeros(base_units - len(base_hits), dtype=int)])
    x = np.concatenate([tuned_hits, np.zeros(tuned_units - len(tuned_hits), dtype=int)])
    greater, less = int((x[:, None] > y[None, :]).sum()), int((x[:, None] < y[None, :]).sum())
    share, n = _unpaired_share(base_hits, tuned_hits, base_units, tuned_units)
    assert n == greater + less
    assert share == pytest.approx(greater / n) if n else np.isnan(share)


def test_unpaired_share_and_depth_groups():
    # base units [0, 0, 1], tuned units [0, 2]: pairs (tuned x, base y): (0,0)x2 equal,
    # (0,1) less, (2,0)x2 greater, (2,1) greater
    share, n = _unpaired_share(np.array([1]), np.array([2]), 3, 2)
    assert (share, n) == (pytest.approx(3 / 4), 4)
    assert _unpaired_share(np.array([], dtype=int), np.array([], dtype=int), 5, 7)[1] == 0
    assert depth_group(np.arange(4), 4, 4).tolist() == [0, 1, 2, 3]
    assert depth_group(np.arange(30), 30, 4).tolist()[-1] == 3
    other = {"n_layers": 8, "n_heads": 1, "d_head": 2}
    base = _pairs([(0, 0, 0, "write", "text")])
    tuned = _pairs([(0, 0, 0, "write", "text"), (1, 0, 1, "write", "book")])
    shares, _, method = compare_heads(base, tuned, SHAPE, other, ["write"], ["go"], n_groups=2)
    assert method == "unpaired"
    assert set(shares["word"]) == {"write"}
