"""Instruction importance from gradient attributions (W1 steps 3-6, docs/methods.md#w1; Wu et al.).

Pure NumPy: given an attribution matrix ``a[j, t]`` (prompt token ``j`` x response token
``t``) and a boolean mask of the prompt's instruction tokens, the pipeline is

1. :func:`levels` -- per response token, clip negatives to 0 and scale to integer levels
   ``ceil(L * a / (max_j a + eps))`` (L = 10);
2. :func:`sparsify` -- zero every level ``<= b`` (b = 7);
3. :func:`density` -- per prompt token, ``D_j = ||levels_j||_1 / (||levels_j||_p + eps)`` over
   the response tokens (p = 4), then :func:`normalise_density` ``D / (max D + 1e-9)``;
4. :func:`instruction_score` -- ``sum of D~ over instruction tokens / log2(2 + n_instr)``.

:func:`score_from_levels` composes 2-4 for stored level matrices, :func:`score_from_attributions`
all four; the model comparison of step 6 (Welch's test) is
:func:`tunescope.stats.welch.welch_one_sided`, used by :mod:`tunescope.compare.attribution`.

An empty response (``R = 0``: the model stopped at once) goes through the same steps: every
density is 0 and the score 0.0, as the study's code scores it (a score, not a missing value).
"""

from __future__ import annotations

import math

import numpy as np

L_LEVELS = 10
"""Number of attribution levels (L)."""
LEVEL_EPS = 1e-7
"""eps of the level scaling, ``ceil(L * a / (max_j a + eps))``."""
DENSITY_EPS = 1e-7
"""eps in the denominator of the density, ``||l_j||_1 / (||l_j||_p + eps)``."""
NORM_EPS = 1e-9
"""eps of the normalisation within an example, ``D / (max D + 1e-9)``."""
B_DEFAULT = 7
P_DEFAULT = 4


def _matrix(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [prompt tokens, response tokens], "
                         f"got shape {arr.shape}")
    return arr


def levels(attributions, L: int = L_LEVELS, eps: float = LEVEL_EPS) -> np.ndarray:
    """Integer attribution levels, shape ``[P, R]`` like ``attributions``.

    ``attributions``: float array ``[P, R]`` (prompt tokens x response tokens). Per response
    token ``t`` (column): negatives are clipped to 0, then ``ceil(L * a / (max_j a + eps))``,
    so the column maximum gets level L (up to eps) and zeros stay 0. A column with no positive
    attribution is all 0. Returns int64 values in ``0..L``.
    """
    a = np.clip(_matrix(attributions, "attributions").astype(np.float64), 0.0, None)
    if a.size == 0:
        return np.zeros(a.shape, dtype=np.int64)
    top = a.max(axis=0, keepdims=True)
    return np.ceil(L * a / (top + eps)).astype(np.int64)


def sparsify(levels_, b: int = B_DEFAULT) -> np.ndarray:
    """A copy of ``levels_`` (any shape) with every level ``<= b`` set to 0 (b = 0 keeps all)."""
    lv = np.asarray(levels_)
    return np.where(lv <= b, 0, lv)


def density(levels_, p: float = P_DEFAULT, eps: float = DENSITY_EPS) -> np.ndarray:
    """Density of each prompt token, shape ``[P]``, from levels ``[P, R]``.

    ``D_j = ||levels_j||_1 / (||levels_j||_p + eps)``, norms over the response tokens. A row of
    ``k`` equal non-zero levels gives about ``k^(1 - 1/p)``: high when a token matters for many
    response tokens; an all-zero row gives 0.
    """
    lv = np.abs(_matrix(levels_, "levels").astype(np.float64))
    l1 = lv.sum(axis=1)
    lp = (lv ** p).sum(axis=1) ** (1.0 / p)
    return l1 / (lp + eps)


def normalise_density(D, eps: float = NORM_EPS) -> np.ndarray:
    """``D / (max D + eps)``, shape ``[P]`` (values in [0, 1); empty stays empty)."""
    d = np.asarray(D, dtype=np.float64)
    if d.size == 0:
        return d.copy()
    return d / (d.max() + eps)


def instruction_score(norm_density, instruction_mask) -> float:
    """The instruction score S of one example.

    ``norm_density``: ``[P]`` normalised densities; ``instruction_mask``: bool ``[P]``, True for
    instruction tokens. ``S = sum(norm_density[mask]) / log2(2 + mask.sum())`` (0 when no
    token is an instruction token).
    """
    d = np.asarray(norm_density, dtype=np.float64)
    m = np.asarray(instruction_mask, dtype=bool)
    if d.shape != m.shape or d.ndim != 1:
        raise ValueError(f"norm_density {d.shape} and instruction_mask {m.shape} must be 1-D "
                         "arrays of the same length")
    n = int(m.sum())
    return float(d[m].sum() / math.log2(2 + n))


def score_from_levels(levels_, instruction_mask, b: int = B_DEFAULT,
                      p: float = P_DEFAULT) -> float:
    """Instruction score of a level matrix ``[P, R]`` (integers 0-10, e.g. the stored levels of
    the Wu et al. release, b = 0 applied) with an instruction mask bool ``[P]``: sparsify at
    ``b``, density with ``p``, normalise, score. A matrix with no response token (R = 0) scores
    0."""
    lv = _matrix(levels_, "levels")
    m = np.asarray(instruction_mask, dtype=bool)
    if m.shape != (lv.shape[0],):
        raise ValueError(f"instruction_mask has shape {m.shape}, expected ({lv.shape[0]},) "
                         f"for levels of shape {lv.shape}")
    return instruction_score(normalise_density(density(sparsify(lv, b), p)), m)


def score_from_attributions(attributions, instruction_mask, L: int = L_LEVELS,
                            b: int = B_DEFAULT, p: float = P_DEFAULT) -> float:
    """Instruction score from raw attributions ``[P, R]``: :func:`levels` then
    :func:`score_from_levels`."""
    return score_from_levels(levels(attributions, L), instruction_mask, b, p)
