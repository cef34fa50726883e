"""Welch's unequal-variance t-test, one- or two-sided (the test of Wu et al. 2024's tables)."""

from __future__ import annotations

import numpy as np


def welch_one_sided(a, b, alternative: str = "less") -> tuple[float, float]:
    """(t, p) of Welch's unequal-variance t-test of samples ``a`` and ``b`` (1-D).

    ``alternative="less"`` tests mean(a) < mean(b) (e.g. base < tuned), ``"greater"`` mean(a) >
    mean(b), ``"two-sided"`` a difference. NaNs are dropped; p is NaN when a sample has fewer
    than two values.
    """
    from scipy import stats

    if alternative not in ("less", "greater", "two-sided"):
        raise ValueError(f"alternative must be 'less', 'greater' or 'two-sided', "
                         f"got {alternative!r}")
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    if len(x) < 2 or len(y) < 2:
        return float("nan"), float("nan")
    res = stats.ttest_ind(x, y, equal_var=False, alternative=alternative)
    return float(res.statistic), float(res.pvalue)
