"""ffn_concepts (W3): the "rotation" of feed-forward concepts, as shares of task categories
and linguistic levels per depth group, tuned - base
(:func:`tunescope.compare.rotation.rotation_from_results`).

Rows ``category_share`` / ``level_share`` (key ``group=<g>,category=<value>``): the share of
labels with that value in the group, with rotation's bootstrap interval (each model's components
resampled independently). Rows ``category_distribution`` / ``level_distribution`` (key
``group=<g>``): rotation's permutation test of the whole distribution, ``statistic`` the total
variation distance between base and tuned shares. ``depth`` is the group's centre,
``(group + 0.5) / n_groups``; ``n_base`` / ``n_tuned`` count components.

Results without a ``labels`` table (labeller ``"none"``) compare only the mean share of variance
in each layer's top-10 components (from the summaries; no interval).

Rows ``principal_angle`` (key ``layer=<l>``; and one without a key, over all layers): where both
Results keep component vectors (``keep_vectors``) and the models share d_model and layers (a
base and its tuned variant), the mean principal angle in degrees between the base's and the
tuned model's top-k component subspaces of the layer (k = the fewer kept); ``base`` is 0 (the
base's subspace against itself), ``tuned`` and ``difference`` the mean angle, ``statistic`` the
largest angle. 0 means tuning left the subspace in place, 90 that it turned it orthogonal.
From the weights directly: :func:`layer_principal_angles`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from tunescope.analyses.ffn_concepts import check_layers, layer_components
from tunescope.compare.depth import N_GROUPS
from tunescope.compare.registry import comparer
from tunescope.compare.rotation import rotation_from_results
from tunescope.compare.table import key, row
from tunescope.errors import TunescopeError
from tunescope.models.depth import relative_depth
from tunescope.models.lm import LM


def _components(shares, model: str, field: str, group: int) -> int:
    sub = shares[(shares["model"] == model) & (shares["field"] == field)
                 & (shares["group"] == group)]
    return int(sub["n_components"].iloc[0]) if len(sub) else 0


def angle_rows(base, tuned) -> list[dict]:
    """The ``principal_angle`` rows (see the module docstring); none when either Result keeps
    no vectors or the models differ in d_model or layers."""

    if "vectors" not in base.tables or "vectors" not in tuned.tables:
        return []
    a, b = base.tables["vectors"], tuned.tables["vectors"]
    layers = sorted(set(a["layer"]))
    if sorted(set(b["layer"])) != layers or not layers:
        return []
    model = base.provenance.get("model") or {}
    n_layers = int(model.get("n_layers") or max(base.summary.get("n_layers", 0), len(layers)))
    rows, means = [], []
    for layer in layers:
        va = np.stack(a.loc[a["layer"] == layer].sort_values("component")["vector"].to_list())
        vb = np.stack(b.loc[b["layer"] == layer].sort_values("component")["vector"].to_list())
        if va.shape[1] != vb.shape[1]:
            return []
        k = min(len(va), len(vb))
        angles = principal_angles(torch.from_numpy(va[:k]), torch.from_numpy(vb[:k])).numpy()
        means.append(float(angles.mean()))
        rows.append(row("principal_angle", key(layer=int(layer)),
                        depth=relative_depth(int(layer), n_layers), base=0.0, tuned=means[-1],
                        statistic=float(angles.max()), n_base=k, n_tuned=k,
                        note=f"mean principal angle (degrees) between the top-{k} component "
                             "subspaces; statistic: the largest angle"))
    rows.append(row("principal_angle", base=0.0, tuned=float(np.mean(means)),
                    n_base=len(layers), n_tuned=len(layers),
                    note="mean over layers of the mean principal angle (degrees)"))
    return rows


@comparer("ffn_concepts")
def compare_ffn_concepts(base, tuned, resampler) -> list[dict]:
    return _concept_rows(base, tuned, resampler) + angle_rows(base, tuned)


def _concept_rows(base, tuned, resampler) -> list[dict]:
    if "labels" not in base.tables or "labels" not in tuned.tables:
        summaries = base.summary, tuned.summary
        return [row("mean_top10_variance",
                    base=summaries[0].get("mean_top10_variance", np.nan),
                    tuned=summaries[1].get("mean_top10_variance", np.nan),
                    n_base=summaries[0].get("n_layers", 0), n_tuned=summaries[1].get("n_layers", 0),
                    note="no labels table (labeller 'none'): concept shares not compared")]
    out = rotation_from_results(base, tuned, n_groups=N_GROUPS, n_boot=resampler.n_boot,
                                n_permutations=resampler.n_boot,
                                seed=int(resampler.rng.integers(2**32)))
    shares, rows = out["shares"], []
    for d in out["differences"].itertuples():
        n_b = _components(shares, "base", d.field, d.group)
        n_t = _components(shares, "tuned", d.field, d.group)
        ok = min(n_b, n_t) >= 2
        rows.append(row(f"{d.field}_share", key(group=int(d.group), **{d.field: d.value}),
                        depth=(d.group + 0.5) / N_GROUPS, base=d.base_share, tuned=d.tuned_share,
                        ci_low=d.ci_low if ok else np.nan, ci_high=d.ci_high if ok else np.nan,
                        n_base=n_b, n_tuned=n_t))
    tests = out["tests"]
    for t in tests[tests["method"] == "permutation"].itertuples():
        rows.append(row(f"{t.field}_distribution", key(group=int(t.group)),
                        depth=(t.group + 0.5) / N_GROUPS,
                        test="permutation_tvd", statistic=t.statistic, p_value=t.p_value,
                        n_base=t.n_base, n_tuned=t.n_tuned,
                        note="statistic: total variation distance between the shares"))
    return rows


def principal_angles(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Principal angles (degrees, ascending) between the row spaces of ``a`` [k1, d] and
    ``b`` [k2, d]; min(k1, k2) angles (0: shared direction, 90: orthogonal).

    Orthonormal bases Qa, Qb by QR; the cosines are the singular values of Qa^T Qb. Small
    angles are taken from the sines (singular values of Qb - Qa Qa^T Qb), which are accurate
    where arccos is not (the method of Knyazev & Argentati, as in scipy's subspace_angles).
    Computed in float64."""
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1]:
        raise TunescopeError(f"principal angles need [k, d] matrices of equal d, got "
                             f"{tuple(a.shape)} and {tuple(b.shape)}")
    qa = torch.linalg.qr(a.detach().double().cpu().T).Q                       # [d, k1]
    qb = torch.linalg.qr(b.detach().double().cpu().T).Q                       # [d, k2]
    if qa.shape[1] < qb.shape[1]:
        qa, qb = qb, qa
    cross = qa.T @ qb                                                          # [k1, k2], k1 >= k2
    cos = torch.linalg.svdvals(cross).clamp(0.0, 1.0)                          # descending
    sin = torch.linalg.svdvals(qb - qa @ cross).clamp(0.0, 1.0).flip(0)        # ascending
    angles = torch.where(cos.pow(2) < 0.5, torch.arccos(cos), torch.arcsin(sin))
    return torch.rad2deg(angles).sort().values


def layer_principal_angles(base_lm: LM, tuned_lm: LM, layers: Sequence[int] | None = None,
                           k: int = 300) -> pd.DataFrame:
    """Principal angles between the top-``k`` component subspaces of each layer of two models
    of the same architecture (a base model and its tuned variant), both read with the
    post-MLP norm gain folded in (as :func:`ffn_concepts`).

    Returns a tidy table (layer, index (1 = smallest angle), angle_degrees). Raises
    :class:`TunescopeError` when the residual widths differ (the components then live in
    different spaces) or a layer is missing in either model."""
    a, b = base_lm.anatomy, tuned_lm.anatomy
    if a.d_model != b.d_model:
        raise TunescopeError(
            f"principal angles need models of the same architecture: d_model {a.d_model} "
            f"({base_lm.name}) differs from {b.d_model} ({tuned_lm.name})")
    if layers is None and a.n_layers != b.n_layers:
        raise TunescopeError(f"{base_lm.name} has {a.n_layers} layers, {tuned_lm.name} "
                             f"{b.n_layers}: principal angles need the same depth")
    layers = check_layers(layers, min(a.n_layers, b.n_layers))
    rows = []
    with torch.no_grad():
        for layer in layers:
            ca, _ = layer_components(a.mlp_down_weight(layer))
            cb, _ = layer_components(b.mlp_down_weight(layer))
            angles = principal_angles(ca[:k], cb[:k]).numpy()
            rows.append(pd.DataFrame({"layer": layer, "index": np.arange(1, len(angles) + 1),
                                      "angle_degrees": angles}))
    return pd.concat(rows, ignore_index=True)
