"""Bootstrap machinery shared by the comparers (NumPy only).

A bootstrap replicate resamples ``n`` units with replacement; it is represented by the units'
multiplicities, a row of a weight matrix ``W`` [n_boot, n] (multinomial counts that sum to
``n``). Every statistic the comparers need is then a weighted sum (means, shares, ratios of
sums) or a weighted ROC-AUC, computed for all replicates at once.

- Paired comparisons (the same units in both models: the same relations, sentence pairs,
  examples, prompts) use the SAME weights for base and tuned, so a replicate compares the two
  models on one resample of the units.
- Unpaired comparisons (different units, e.g. the queries each model answers correctly) draw
  independent weights for the two models.

Intervals are percentile intervals of the replicated difference (tuned - base). The two-sided
bootstrap p-value inverts them: ``p = min(1, 2 (1 + min(#{d* <= 0}, #{d* >= 0})) / (1 + B))``
over the B finite replicates d*, i.e. about the smallest level at which the percentile interval
excludes 0 (the +1 keeps it above 0 for a finite number of replicates). Everything is
deterministic for a given ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

LEVEL = 0.95
"""Confidence level of every interval."""


@dataclass
class Resampler:
    """Draws bootstrap weights: ``rng`` a NumPy Generator, ``n_boot`` replicates."""

    rng: np.random.Generator
    n_boot: int

    def weights(self, n: int) -> np.ndarray:
        """Multiplicities [n_boot, n] (float64) of ``n`` units resampled with replacement."""
        if n == 0:
            return np.zeros((self.n_boot, 0))
        return self.rng.multinomial(n, np.full(n, 1.0 / n), size=self.n_boot).astype(np.float64)

    def stratified(self, strata) -> np.ndarray:
        """Multiplicities [n_boot, n] resampling within each stratum (e.g. label), so every
        replicate keeps each stratum's size."""
        strata = np.asarray(strata)
        out = np.zeros((self.n_boot, len(strata)))
        for value in sorted(set(strata.tolist())):
            where = np.flatnonzero(strata == value)
            out[:, where] = self.weights(len(where))
        return out

    def pair(self, n_base: int, n_tuned: int, paired: bool, strata_base=None,
             strata_tuned=None) -> tuple[np.ndarray, np.ndarray]:
        """(base weights, tuned weights): one matrix used twice when ``paired`` (then the
        units and strata must be the same), independent draws otherwise."""
        def draw(n, strata):
            return self.weights(n) if strata is None else self.stratified(strata)
        if paired:
            if n_base != n_tuned:
                raise ValueError(f"paired bootstrap of {n_base} and {n_tuned} units")
            w = draw(n_base, strata_base)
            return w, w
        return draw(n_base, strata_base), draw(n_tuned, strata_tuned)


def ratio(weights: np.ndarray, numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Weighted ratios of sums ``(W @ num) / (W @ den)``: [n_boot, k] from weights [n_boot, n]
    and per-unit ``numerator`` / ``denominator`` [n, k] (a zero denominator gives NaN).

    A mean of values x with missing entries is ``ratio(W, nan_to_num(x), ~isnan(x))``."""
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (weights @ num) / (weights @ den)


def observed(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """:func:`ratio` with every unit counted once: [k]."""
    return ratio(np.ones((1, len(numerator))), numerator, denominator)[0]


def mean_parts(values) -> tuple[np.ndarray, np.ndarray]:
    """(numerator, denominator) of a NaN-ignoring mean of ``values`` [n, k] for :func:`ratio`."""
    x = np.asarray(values, dtype=np.float64)
    valid = ~np.isnan(x)
    return np.where(valid, x, 0.0), valid.astype(np.float64)


def weighted_auc(scores: np.ndarray, positive: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC-AUC of each score column under each replicate's unit weights.

    Args:
        scores: [n, k] (k score columns, e.g. layers).
        positive: bool [n] (label 1).
        weights: [n_boot, n] multiplicities.

    Returns: [n_boot, k]: the weighted probability that a label-1 unit scores higher than a
    label-0 unit, ties counting one half; equal to the Mann–Whitney AUC of the resampled units.
    The label-0 scores of each column are sorted once; a replicate only re-weights them: with
    C the cumulative label-0 weight along the sorted scores, a label-1 unit of score s sees
    C(< s) below it and C(<= s) - C(< s) tied with it.
    """
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    w_pos, w_neg = weights[:, positive], weights[:, ~positive]
    total = w_pos.sum(1) * w_neg.sum(1)
    out = np.empty((weights.shape[0], scores.shape[1]))
    for col in range(scores.shape[1]):
        s_pos, s_neg = scores[positive, col], scores[~positive, col]
        order = np.argsort(s_neg, kind="stable")
        ranked = s_neg[order]
        cum = np.zeros((weights.shape[0], len(ranked) + 1))
        np.cumsum(w_neg[:, order], axis=1, out=cum[:, 1:])
        below = cum[:, np.searchsorted(ranked, s_pos, side="left")]
        upto = cum[:, np.searchsorted(ranked, s_pos, side="right")]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, col] = (w_pos * (0.5 * (below + upto))).sum(1) / total
    return out


def percentile_ci(replicates: np.ndarray, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval per column of ``replicates`` [n_boot, k] (NaN replicates ignored;
    an all-NaN column gives NaN)."""
    tail = (1.0 - level) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanquantile(replicates, [tail, 1.0 - tail], axis=0)
    return low, high


def bootstrap_p(replicates: np.ndarray) -> np.ndarray:
    """Two-sided bootstrap p-value per column of ``replicates`` [n_boot, k] (module docstring);
    NaN for a column without a finite replicate."""
    finite = np.isfinite(replicates)
    b = finite.sum(0)
    below = (np.where(finite, replicates, np.inf) <= 0).sum(0)
    above = (np.where(finite, replicates, -np.inf) >= 0).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.minimum(1.0, 2.0 * (1 + np.minimum(below, above)) / (1 + b))
    return np.where(b > 0, p, np.nan)
