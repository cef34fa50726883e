"""Relative depth: the one depth scale shared by the analyses, the comparisons and the report.

A model with ``n`` blocks has ``n + 1`` hidden states: index 0 is the embedding output and
index ``i + 1`` is the output of block ``i``. The relative depth of hidden state ``h`` is
``h / n``, so the relative depth of block ``i`` is that of its output, ``(i + 1) / n``: 1.0 is
the last block, 0.0 the embeddings, and models of different depth share one axis from 0 to 1.
Why the block's output: every per-block quantity tunescope reports (a knockout window centred on
the block, an extraction rate read after it, a hidden state pooled from it) is a property of
what the block has written, so the block sits where its output sits. See docs/methods.md#depth,
and :func:`tunescope.compare.depth.depth_group` for the groups of blocks used by W2 and W3.
"""

from __future__ import annotations

import numpy as np


def hidden_state_depth(index, n_layers: int):
    """Relative depth ``index / n_layers`` of hidden state ``index`` (0 = embeddings,
    ``n_layers`` = the last block's output); scalar or array in, float or float array out."""
    return np.asarray(index) / n_layers


def relative_depth(layer, n_layers: int):
    """Relative depth ``(layer + 1) / n_layers`` of block ``layer`` (0-based): the depth of its
    output, 1.0 for the last block; scalar or array in, float or float array out."""
    return hidden_state_depth(np.asarray(layer) + 1, n_layers)
