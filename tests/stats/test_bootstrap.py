"""Bootstrap primitives: weighted AUCs equal the AUCs of the resampled units, p-values and
percentile intervals by hand, paired weights shared and unpaired ones independent."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tunescope.analyses.representation_consistency import roc_auc
from tunescope.stats.bootstrap import Resampler, bootstrap_p, percentile_ci, weighted_auc


def test_weighted_auc_equals_the_auc_of_the_resampled_units():
    rng = np.random.default_rng(3)
    scores = np.round(rng.normal(size=(40, 3)), 1)               # rounding makes ties
    labels = np.arange(40) % 3 == 0
    weights = Resampler(np.random.default_rng(0), 5).stratified(labels)
    assert (weights[:, labels].sum(1) == labels.sum()).all()     # strata keep their sizes
    got = weighted_auc(scores, labels, weights)
    for b in range(5):
        idx = np.repeat(np.arange(40), weights[b].astype(int))
        np.testing.assert_allclose(got[b], roc_auc(scores[idx], labels[idx]), rtol=0, atol=1e-12)
    np.testing.assert_allclose(weighted_auc(scores, labels, np.ones((1, 40)))[0],
                               [roc_auc_score(labels, scores[:, k]) for k in range(3)])


def test_bootstrap_p_and_interval():
    b = 99
    assert bootstrap_p(np.full((b, 1), 0.3))[0] == pytest.approx(2 / 100)   # never <= 0
    assert bootstrap_p(np.zeros((b, 1)))[0] == 1.0                           # no difference
    half = np.r_[-np.ones(50), np.ones(49)][:, None]
    assert bootstrap_p(half)[0] == pytest.approx(min(1, 2 * 50 / 100))
    assert np.isnan(bootstrap_p(np.full((b, 1), np.nan))[0])
    low, high = percentile_ci(np.arange(101.0)[:, None])
    assert (low[0], high[0]) == (pytest.approx(2.5), pytest.approx(97.5))


def test_paired_weights_are_shared_and_unpaired_independent():
    r = Resampler(np.random.default_rng(0), 20)
    wb, wt = r.pair(6, 6, paired=True)
    assert wb is wt and (wb.sum(1) == 6).all()
    wb, wt = r.pair(6, 6, paired=False)
    assert not np.array_equal(wb, wt)
    with pytest.raises(ValueError):
        r.pair(5, 6, paired=True)
