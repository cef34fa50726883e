"""W2 base vs tuned: shares of changed heads (matched or unpaired) over each head's knowledge
pairs, and the verb test."""

import numpy as np
import pandas as pd
import pytest

from tunescope.compare.verb_share import _unpaired_share, compare_heads, depth_group

SHAPE = {"n_layers": 4, "n_heads": 2}


def _knowledge(rows):
    return pd.DataFrame(rows, columns=["layer", "head", "word_a", "word_b"])


def test_joined_shares_hand_computed():
    base = _knowledge([(0, 0, "text", "write"), (0, 1, "poem", "write"), (0, 1, "go", "run"),
                       (1, 0, "text", "write")])
    tuned = _knowledge([(0, 0, "text", "write"), (0, 0, "essay", "write"),   # head (0,0): 1 -> 2
                        (0, 1, "go", "run"),                                  # head (0,1): 1 -> 0
                        (1, 0, "text", "write")])                             # head (1,0): 1 -> 1
    shares, tests, method = compare_heads(base, tuned, SHAPE, SHAPE, ["write"], ["go", "run"])
    assert method == "joined"
    row = shares.set_index("word").loc["write"]
    assert (row["n_changed"], row["share_more_after_tuning"]) == (2, pytest.approx(1 / 2))
    assert "go" not in set(shares["word"])  # unchanged everywhere
    assert tests.loc[0, "instruction_n"] == 1 and tests.loc[0, "general_n"] == 0
    assert tests.loc[1, "instruction_n"] == 0   # head (1,0) unchanged: no share in group 1


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
    other = {"n_layers": 8, "n_heads": 1}
    base = _knowledge([(0, 0, "text", "write")])
    tuned = _knowledge([(0, 0, "text", "write"), (1, 0, "book", "write")])
    shares, _, method = compare_heads(base, tuned, SHAPE, other, ["write"], ["go"], n_groups=2)
    assert method == "unpaired"
    assert set(shares["word"]) == {"write"}
