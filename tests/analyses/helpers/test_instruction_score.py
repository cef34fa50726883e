"""W1 instruction scores (steps 3-6 of METHODS.md) against examples worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tunescope.analyses.helpers.instruction_score import (
    density,
    instruction_score,
    levels,
    normalise_density,
    score_from_attributions,
    score_from_levels,
    sparsify,
)

# A 3x2 attribution matrix (3 prompt tokens j, 2 response tokens t), worked by hand:
#
#   a = [[0.2, -0.1],        column t=0: max 0.5 -> ceil(10*0.2/0.5) = 4, 10, ceil(10*0.1/0.5) = 2
#        [0.5,  0.3],        column t=1: -0.1 clipped to 0 -> 0; max 0.6 -> ceil(10*0.3/0.6) = 5, 10
#        [0.1,  0.6]]        (eps = 1e-7 pulls 10*a/max just below an integer: ceil gives it)
#
#   levels = [[4, 0], [10, 5], [2, 10]]
#
#   b = 0, p = 4:  D_0 = 4 / 4                          = 1
#                  D_1 = (10 + 5) / (10^4 + 5^4)^(1/4)  = 15 / 10625^0.25 = 15 / 10.15272 = 1.47744
#                  D_2 = (2 + 10) / (2^4 + 10^4)^(1/4)  = 12 / 10016^0.25 = 12 / 10.00400 = 1.19952
#   normalised by max 1.47744:  D~ = [0.67685, 1, 0.81189]
#   instruction tokens {0, 1}:  S = (0.67685 + 1) / log2(2 + 2) = 1.67685 / 2 = 0.83842
#
#   b = 7:  levels -> [[0, 0], [10, 0], [0, 10]];  D = [0, 10/10, 10/10] = [0, 1, 1]
#           S over {0, 1} = (0 + 1) / log2(4) = 0.5;  over all three = 2 / log2(5) = 0.86135

A = np.array([[0.2, -0.1], [0.5, 0.3], [0.1, 0.6]])
LEVELS = np.array([[4, 0], [10, 5], [2, 10]])
MASK = np.array([True, True, False])


def test_levels_by_hand():
    lv = levels(A)
    assert lv.dtype.kind == "i"
    np.testing.assert_array_equal(lv, LEVELS)


def test_levels_column_without_positive_attribution_is_zero_and_L_scales():
    a = np.array([[-1.0, 2.0], [-3.0, 1.0], [0.0, 0.5]])
    np.testing.assert_array_equal(levels(a), [[0, 10], [0, 5], [0, 3]])
    # L = 4: ceil(4 * 1/2) = 2, ceil(4 * 0.5/2) = 1
    np.testing.assert_array_equal(levels(a, L=4), [[0, 4], [0, 2], [0, 1]])
    assert levels(np.zeros((3, 0))).shape == (3, 0)
    with pytest.raises(ValueError, match="2-D"):
        levels(np.ones(3))


def test_sparsify_zeroes_levels_at_or_below_b():
    np.testing.assert_array_equal(sparsify(LEVELS, 0), LEVELS)
    np.testing.assert_array_equal(sparsify(LEVELS, 4), [[0, 0], [10, 5], [0, 10]])
    np.testing.assert_array_equal(sparsify(LEVELS, 5), [[0, 0], [10, 0], [0, 10]])
    np.testing.assert_array_equal(sparsify(LEVELS, 7), [[0, 0], [10, 0], [0, 10]])
    np.testing.assert_array_equal(sparsify(LEVELS, 10), np.zeros((3, 2)))
    np.testing.assert_array_equal(LEVELS, [[4, 0], [10, 5], [2, 10]])  # input untouched


def test_density_by_hand():
    d = density(LEVELS, p=4)
    np.testing.assert_allclose(d, [1.0, 1.47744, 1.19952], rtol=1e-5)
    np.testing.assert_allclose(d, [4 / (4 + 1e-7), 15 / (10625 ** 0.25 + 1e-7),
                                   12 / (10016 ** 0.25 + 1e-7)], rtol=1e-12)
    # k equal non-zero levels give k^(1 - 1/p); an all-zero row gives 0 (eps, no division error)
    np.testing.assert_allclose(density(np.array([[9, 9, 9, 9], [0, 0, 0, 0]])), [4 ** 0.75, 0],
                               rtol=1e-7)
    np.testing.assert_allclose(density(LEVELS, p=1), [1, 1, 1], rtol=1e-6)


def test_normalise_density():
    n = normalise_density(density(LEVELS))
    np.testing.assert_allclose(n, [0.67685, 1.0, 0.81189], rtol=1e-5)
    assert n.max() < 1
    np.testing.assert_array_equal(normalise_density(np.zeros(3)), np.zeros(3))
    assert normalise_density(np.array([])).shape == (0,)


def test_instruction_score_by_hand():
    n = normalise_density(density(LEVELS))
    assert instruction_score(n, MASK) == pytest.approx(0.83842, rel=1e-5)
    assert instruction_score(n, MASK) == pytest.approx((n[0] + n[1]) / math.log2(4))
    assert instruction_score(n, [False, False, False]) == 0.0
    assert instruction_score(n, [True, True, True]) == pytest.approx(n.sum() / math.log2(5))
    with pytest.raises(ValueError, match="same length"):
        instruction_score(n, [True, False])


def test_score_from_levels_and_attributions():
    assert score_from_levels(LEVELS, MASK, b=0) == pytest.approx(0.83842, rel=1e-5)
    assert score_from_levels(LEVELS, MASK, b=7) == pytest.approx(0.5, rel=1e-7)
    assert score_from_levels(LEVELS, [True] * 3, b=7) == pytest.approx(2 / math.log2(5), rel=1e-7)
    assert score_from_attributions(A, MASK, b=7) == pytest.approx(0.5, rel=1e-7)
    assert score_from_attributions(A, MASK, b=0) == score_from_levels(LEVELS, MASK, b=0)
    # stored uint8 levels behave like int levels; no response token scores 0
    assert score_from_levels(LEVELS.astype(np.uint8), MASK, b=0) == pytest.approx(0.83842,
                                                                                 rel=1e-5)
    assert score_from_levels(np.zeros((3, 0), np.uint8), MASK) == 0.0
    with pytest.raises(ValueError, match="instruction_mask"):
        score_from_levels(LEVELS, [True, False])


def test_empty_response_goes_through_every_step_to_zero():
    """No response token (the model stopped at once): levels [P, 0], every density 0, the
    normalised densities 0 and the score 0.0, as the study's code scores it (not NaN)."""
    lv = sparsify(levels(np.zeros((4, 0))))
    assert lv.shape == (4, 0)
    np.testing.assert_array_equal(density(lv), np.zeros(4))
    np.testing.assert_array_equal(normalise_density(density(lv)), np.zeros(4))
    assert instruction_score(normalise_density(density(lv)), [True, False, True, False]) == 0.0
    assert score_from_attributions(np.zeros((4, 0)), [True, False, True, False]) == 0.0


