"""Depth across models: a common relative-depth grid, and the groups of blocks.

Relative depth itself is defined once, in :mod:`tunescope.models.depth`.

Per-layer comparisons are made at the BASE model's layers: the tuned model's curve (a
statistic per layer, or each bootstrap replicate of it) is interpolated linearly in relative
depth onto the base's relative depths. Where the base's grid reaches beyond the tuned's (its
first or last point), the tuned's nearest layer is used. For two models of the same depth the
grids coincide and the interpolation is the identity (exactly, not just to rounding).
"""

from __future__ import annotations

import numpy as np


def interpolation(source, target) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices ``lo``, ``hi`` [T] and weights ``w`` [T] such that the value at ``target[t]``
    is ``(1 - w) * v[lo] + w * v[hi]`` for values ``v`` on the increasing ``source`` grid [S]
    (clamped at both ends; ``hi == lo`` wherever ``w == 0``)."""
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if len(source) > 1 and np.any(np.diff(source) <= 0):
        raise ValueError("the source depths must increase strictly")
    last = len(source) - 1
    lo = np.clip(np.searchsorted(source, target, side="right") - 1, 0, last)
    hi = np.minimum(lo + 1, last)
    span = source[hi] - source[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(span > 0, (target - source[lo]) / span, 0.0)
    w = np.clip(w, 0.0, 1.0)
    hi = np.where(w == 0, lo, hi)
    return lo, hi, w


def to_grid(values, source, target) -> np.ndarray:
    """``values`` [..., S] on the ``source`` depths, interpolated onto ``target`` [T]: [..., T]."""
    values = np.asarray(values, dtype=np.float64)
    lo, hi, w = interpolation(source, target)
    blended = values[..., lo] * (1.0 - w) + values[..., hi] * w
    return np.where(w > 0, blended, values[..., lo])     # exact grid points: the value itself


def same_grid(source, target) -> bool:
    """True when the two depth grids are equal (no interpolation happens)."""
    source, target = np.asarray(source, dtype=np.float64), np.asarray(target, dtype=np.float64)
    return source.shape == target.shape and bool(np.allclose(source, target, rtol=0, atol=1e-12))


N_GROUPS = 4
"""The number of depth groups of the W2 verb-share table and the W3 rotation statistics."""


def depth_group(layer, n_layers: int, n_groups: int = N_GROUPS):
    """Group index 0..n_groups-1 of block ``layer`` (scalar or array): the blocks cut into
    ``n_groups`` consecutive runs of nearly equal size, ``floor(layer * n_groups / n_layers)``
    in integer arithmetic (the group whose interval ``[g / G, (g + 1) / G)`` holds the block's
    input depth ``layer / n_layers``)."""
    return np.minimum((np.asarray(layer) * n_groups) // n_layers, n_groups - 1)
