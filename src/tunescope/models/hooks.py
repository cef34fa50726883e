"""Hook points on any supported model: read the residual stream, edit attention edges.

Two context managers, both built on :class:`~tunescope.models.anatomy.Anatomy`:

* :func:`trace` records activations at named hook points, optionally only at chosen positions,
  and can stop the forward pass after the last block it needs.
* :func:`block_attention` removes attention edges (query position -> key position) in chosen
  layers, per batch row, under eager and SDPA attention: the tool of attention knockout.

Hook points (per block ``l`` unless said otherwise), each a [batch, seq, d_model] tensor:

=============  ===================================================================
``embed``      the residual stream entering block 0 (token embeddings, scaled/positioned
               as the model does); recorded under layer index 0
``resid_post`` the residual stream leaving block ``l``
``attn_out``   attention's contribution to the residual in block ``l``
``mlp_out``    the MLP's contribution to the residual in block ``l``
=============  ===================================================================

Attaching hooks without edits changes nothing: logits stay bit-identical (tested).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import contextmanager

import torch

from tunescope.models.lm import LM

POINTS = ("embed", "resid_post", "attn_out", "mlp_out")


class StopForward(Exception):
    """Raised by a hook to end a forward pass early; swallowed by :func:`trace`."""


def _first(output):
    return output[0] if isinstance(output, tuple) else output


def _select(x: torch.Tensor, positions) -> torch.Tensor:
    """Pick positions from ``x`` [B, T, d]: None -> all; int -> [B, d]; LongTensor [B] -> [B, d];
    LongTensor [B, P] -> [B, P, d]."""
    if positions is None:
        return x
    if isinstance(positions, int):
        return x[:, positions]
    positions = positions.to(x.device)
    rows = torch.arange(x.shape[0], device=x.device)
    if positions.dim() == 1:
        return x[rows, positions]
    return x[rows[:, None], positions]


class Trace:
    """Activations recorded by :func:`trace`: ``trace[point][layer]`` is a tensor
    [B, T, d_model] (or [B, d_model] / [B, P, d_model] when positions were chosen)."""

    def __init__(self, points: Iterable[str], layers: list[int]):
        self.layers = layers
        self.values: dict[str, dict[int, torch.Tensor]] = {p: {} for p in points}

    def __getitem__(self, point: str) -> dict[int, torch.Tensor]:
        return self.values[point]

    def stack(self, point: str) -> torch.Tensor:
        """The recorded layers of ``point`` stacked on a new first axis, in layer order."""
        recorded = self.values[point]
        return torch.stack([recorded[l] for l in sorted(recorded)])


@contextmanager
def trace(lm: LM, points: Iterable[str] = ("resid_post",), layers: Iterable[int] | None = None,
          positions=None, stop_early: bool = False, detach: bool = True):
    """Record activations at ``points`` of blocks ``layers`` (default all) during forward passes.

    Args:
        positions: None for every position, or an int / LongTensor [B] / LongTensor [B, P] of
            positions to keep (saves memory: only those are stored).
        stop_early: end the forward pass right after the last block in ``layers``; the model
            call then returns nothing, and the exception that stops it is swallowed here.
        detach: store detached tensors (set False to keep gradients flowing).

    Yields a :class:`Trace`.
    """
    points = tuple(points)
    unknown = set(points) - set(POINTS)
    if unknown:
        raise ValueError(f"unknown hook point(s) {sorted(unknown)}; known: {', '.join(POINTS)}")
    anatomy = lm.anatomy
    layers = sorted(set(range(anatomy.n_layers) if layers is None else layers))
    if any(l < 0 or l >= anatomy.n_layers for l in layers):
        raise ValueError(f"layers must lie in 0..{anatomy.n_layers - 1}, got {layers}")
    record = Trace(points, layers)

    def store(point, layer, x):
        x = _select(x, positions)
        record.values[point][layer] = x.detach() if detach else x

    handles = []
    try:
        if "embed" in points:
            def embed_hook(module, args, kwargs):
                store("embed", 0, args[0] if args else kwargs["hidden_states"])
            handles.append(anatomy.blocks[0].register_forward_pre_hook(embed_hook, with_kwargs=True))
        modules = {"resid_post": anatomy.blocks.__getitem__, "attn_out": anatomy.attn_out,
                   "mlp_out": anatomy.mlp_out}
        for point in points:
            if point == "embed":
                continue
            for layer in layers:
                def hook(module, args, output, point=point, layer=layer):
                    store(point, layer, _first(output))
                handles.append(modules[point](layer).register_forward_hook(hook))
        if stop_early and layers:
            def stop(module, args, output):
                raise StopForward
            handles.append(anatomy.blocks[layers[-1]].register_forward_hook(stop))
        try:
            yield record
        except StopForward:
            pass
    finally:
        for h in handles:
            h.remove()


def _edit_mask(mask: torch.Tensor | None, blocked: torch.Tensor) -> torch.Tensor:
    """Remove the ``blocked`` edges [B, Q, K] from an HF attention mask.

    HF passes None (plain causal, SDPA's fast path), a bool mask [B|1, 1, Q, K] (True = may
    attend) or an additive float mask (0 or a large negative number).
    """
    B, Q, K = blocked.shape
    if mask is None:
        offset = K - Q
        q = torch.arange(Q, device=blocked.device)[:, None]
        k = torch.arange(K, device=blocked.device)[None, :]
        mask = (k <= q + offset)[None, None].expand(B, 1, Q, K)
    if mask.dtype == torch.bool:
        return mask & ~blocked[:, None]
    return mask.masked_fill(blocked[:, None], torch.finfo(mask.dtype).min)


@contextmanager
def block_attention(lm: LM, blocked: Mapping[int, torch.Tensor]):
    """Knock out attention edges during forward passes.

    Args:
        blocked: ``{layer: bool tensor [B, Q, K]}``; True at ``[b, q, k]`` stops query position
            ``q`` of batch row ``b`` from attending to key position ``k`` in that layer. Rows,
            layers and positions may differ freely, so many counterfactual runs share one
            batch. Layers whose tensor has no True entry are left untouched. With a key/value
            cache, ``Q`` counts the new positions and ``K`` every position (cached + new).

    Works under eager and SDPA attention (not flash attention, which takes no mask). Never
    block every key of a query row: its attention would be undefined.
    """
    anatomy = lm.anatomy
    handles = []

    def make_hook(layer, edges):
        def hook(module, args, kwargs):
            hidden = args[0] if args else kwargs["hidden_states"]
            if hidden.shape[0] != edges.shape[0] or hidden.shape[1] != edges.shape[1]:
                raise ValueError(f"blocked edges {tuple(edges.shape)} do not match the batch "
                                 f"{tuple(hidden.shape[:2])} (batch, query positions)")
            # With a key/value cache the keys this layer sees are the absolute positions
            # [offset, offset + length) (a sliding-window layer keeps only recent ones).
            # transformers >= 5.2x names the cache ``cache``; earlier 5.x ``past_key_values``.
            cache = next((kwargs[k] for k in ("cache", "past_key_values", "layer_past")
                          if kwargs.get(k) is not None), None)
            if cache is not None:
                length, offset = cache.get_mask_sizes(hidden.shape[1], layer)
            else:
                length, offset = edges.shape[2], 0
            if offset + length > edges.shape[2]:
                raise ValueError(f"blocked edges cover {edges.shape[2]} key positions, the "
                                 f"layer reads {offset + length}")
            kwargs["attention_mask"] = _edit_mask(kwargs.get("attention_mask"),
                                                  edges[:, :, offset:offset + length].to(hidden.device))
            return args, kwargs
        return hook

    try:
        for layer, edges in blocked.items():
            if not 0 <= layer < anatomy.n_layers:
                raise ValueError(f"layer {layer} out of range 0..{anatomy.n_layers - 1}")
            if edges.dtype != torch.bool or edges.dim() != 3:
                raise ValueError("blocked edges must be bool tensors [batch, query, key]")
            if edges.any():
                handles.append(anatomy.attn(layer).register_forward_pre_hook(
                    make_hook(layer, edges), with_kwargs=True))
        yield
    finally:
        for h in handles:
            h.remove()
