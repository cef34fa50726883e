"""Key/value caches: run a shared prefix once, continue many rows from it."""

from __future__ import annotations

import copy
import functools
import inspect

import torch


def select_cache(cache, rows: torch.Tensor):
    """A copy of an HF ``Cache`` holding only batch ``rows`` (repeats allowed; the original
    stays untouched, so it can serve further selections)."""
    selected = copy.copy(cache)
    selected.layers = [copy.copy(layer) for layer in cache.layers]
    for layer in selected.layers:
        layer.batch_select_indices(rows)
    return selected


@functools.lru_cache(maxsize=None)
def _cache_keyword(model_class: type) -> str:
    forward = inspect.signature(model_class.forward).parameters
    return "cache" if "cache" in forward else "past_key_values"


def with_cache(model, cache) -> dict:
    """Keyword arguments passing ``cache`` to ``model``'s forward pass: ``cache=`` from
    transformers 5.2x on, ``past_key_values=`` in earlier 5.x releases."""
    return {_cache_keyword(type(model)): cache}


def cache_of(output):
    """The key/value cache of a forward pass's output (``output.cache`` from transformers 5.2x
    on, ``output.past_key_values`` before)."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values
