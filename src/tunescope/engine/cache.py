"""Key/value caches: run a shared prefix once, continue many rows from it."""

from __future__ import annotations

import copy

import torch


def select_cache(cache, rows: torch.Tensor):
    """A copy of an HF ``Cache`` holding only batch ``rows`` (repeats allowed; the original
    stays untouched, so it can serve further selections)."""
    selected = copy.copy(cache)
    selected.layers = [copy.copy(layer) for layer in cache.layers]
    for layer in selected.layers:
        layer.batch_select_indices(rows)
    return selected
