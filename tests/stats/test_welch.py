"""Welch's t-test against SciPy, one- and two-sided; NaNs dropped; bad input refused."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from tunescope.stats.welch import welch_one_sided


def test_welch_matches_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.0, 1.0, 40), rng.normal(0.4, 2.0, 25)
    for alt in ("less", "greater", "two-sided"):
        ref = stats.ttest_ind(a, b, equal_var=False, alternative=alt)
        t, p = welch_one_sided(a, b, alt)
        assert t == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)
    t_less, p_less = welch_one_sided(a, b)
    assert p_less == pytest.approx(stats.ttest_ind(a, b, equal_var=False,
                                                   alternative="less").pvalue)
    assert welch_one_sided(a, b, "greater")[1] == pytest.approx(1 - p_less)
    # NaNs dropped; too few values -> NaN; unknown alternative -> ValueError
    t2, p2 = welch_one_sided(np.append(a, np.nan), b)
    assert (t2, p2) == pytest.approx((t_less, p_less))
    assert all(math.isnan(x) for x in welch_one_sided([1.0], b))
    with pytest.raises(ValueError, match="alternative"):
        welch_one_sided(a, b, "bigger")
