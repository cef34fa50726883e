"""representation_consistency (C2): paraphrase gap and ROC-AUC per layer and pooling, and the
analysis' pre-declared summaries, tuned - base.

Each model's statistics are computed on its own layers from the per-pair cosines (the
``pairs`` table, every pair: the analysis' source ``"all"``). Depth is the analysis' own:
``layer / n_layers`` with layer 0 the embedding output and ``n_layers`` the last block's output
before the final norm.

Bootstrap over pairs, stratified by label (each replicate keeps the numbers of paraphrases and
non-paraphrases, so the AUC is always defined). The pairs are the same sentences in both models
when both Results hold the same pairs (same ids and labels, same dataset): then paired, else
unpaired.

Rows:

* per layer (key ``pooling=<p>,layer=<l>``, metrics ``gap`` and ``auc``): at the base's layers,
  the tuned model's curve interpolated onto the base's relative depths
  (:mod:`tunescope.compare.depth`; the identity for models of equal depth). A row whose value
  rests on a degenerate layer (all cosines equal: AUC 0.5 by construction) says so in its note.
* the final-normed layer (key ``pooling=<p>,layer=normed``, depth 1.0), when both Results have
  it: each model's last block output through its final norm.
* the pre-declared summaries (key ``pooling=<p>``, no depth): ``auc_<scope>`` and
  ``gap_<scope>`` for the scopes of :data:`tunescope.analyses.representation_consistency.SCOPES`: the
  mean over all layers and over the early / middle / late thirds of relative depth, each model
  over its own layers without its degenerate (and normed) ones, recomputed in every replicate.
  These are the analysis' summary numbers ``<p>_auc_<scope>`` / ``<p>_gap_<scope>``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tunescope.analyses.representation_consistency import (
    ALL,
    SCOPES,
    band_of,
    degenerate_layers,
    scope_masks,
    scope_means,
)
from tunescope.compare.depth import interpolation, same_grid, to_grid
from tunescope.compare.registry import comparer
from tunescope.compare.table import bootstrap_rows, join_notes, key, need, same_dataset
from tunescope.stats.bootstrap import mean_parts, ratio, weighted_auc

INTERPOLATED = "tuned interpolated onto the base's relative depths"


def _stats(cosines: np.ndarray, positive: np.ndarray,
           weights: np.ndarray) -> dict[str, np.ndarray]:
    """``gap`` (mean cosine of paraphrases minus non-paraphrases) and ``auc`` per column of
    ``cosines`` [n, L], [n_boot, L] each, under the pair ``weights`` [n_boot, n]."""
    para = mean_parts(np.where(positive[:, None], cosines, np.nan))
    non = mean_parts(np.where(positive[:, None], np.nan, cosines))
    return {"gap": ratio(weights, *para) - ratio(weights, *non),
            "auc": weighted_auc(cosines, positive, weights)}


@dataclass
class PairCosines:
    """One model's cosines of one pooling: pair ids [n], labels (bool) [n], the layers [L]
    without the final-normed one, their relative depths [L], depth bands [L] and degenerate
    flags [L], the cosines [n, L], and the final-normed layer's cosines [n] (None when the
    Result has none)."""

    pairs: np.ndarray
    positive: np.ndarray
    layers: np.ndarray
    depth: np.ndarray
    bands: np.ndarray
    degenerate: np.ndarray
    cosines: np.ndarray
    normed: np.ndarray | None = None

    @classmethod
    def of(cls, result, pooling: str) -> "PairCosines":
        table = need(result, "pairs")
        sub = table[table["pooling"] == pooling]
        cos = sub.pivot(index="pair", columns="layer", values="cosine").sort_index()
        labels = sub.groupby("pair")["label"].first().reindex(cos.index)
        info = need(result, "layers")
        info = info[info["pooling"] == pooling]
        if "source" in info:
            info = info[info["source"] == ALL]
        info = info.set_index("layer")
        normed = (set(info.index[info["normed"].astype(bool)].tolist()) if "normed" in info
                  else set())
        keep = [l for l in cos.columns if l not in normed]
        values = cos[keep].to_numpy(np.float64)
        layers = np.asarray(keep)
        n_layers = int(layers.max()) if len(layers) else 0
        bands = (info["band"].reindex(layers).to_numpy(object) if "band" in info
                 else band_of(layers, n_layers))
        degenerate = (info["degenerate"].reindex(layers).to_numpy(bool) if "degenerate" in info
                      else degenerate_layers(values))
        normed_cos = cos[sorted(normed)[0]].to_numpy(np.float64) if normed else None
        return cls(cos.index.to_numpy(), labels.to_numpy().astype(bool), layers,
                   info["relative_depth"].reindex(layers).to_numpy(np.float64), bands,
                   degenerate, values, normed_cos)

    def statistics(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """``gap`` and ``auc`` per layer, [n_boot, L] each, under the pair ``weights``
        [n_boot, n]."""
        return _stats(self.cosines, self.positive, weights)

    def masks(self) -> dict[str, np.ndarray]:
        """The layers of each pre-declared scope (degenerate ones left out)."""
        return scope_masks(self.bands, ~self.degenerate)

    def scopes(self, stats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``{"<metric>_<scope>": [n_boot]}``: the scope means of the per-layer ``stats``."""
        masks = self.masks()
        return {f"{metric}_{scope}": values
                for metric in ("auc", "gap")
                for scope, values in scope_means(stats[metric], masks).items()}


def _degenerate_notes(b: PairCosines, t: PairCosines) -> list[str]:
    """Per base layer: which model's value there rests on a degenerate layer ("" if none)."""
    lo, hi, _ = interpolation(t.depth, b.depth)
    tuned_bad = t.degenerate[lo] | t.degenerate[hi]
    notes = []
    for base_bad, tuned in zip(b.degenerate, tuned_bad):
        who = [name for name, bad in (("base", base_bad), ("tuned", tuned)) if bad]
        notes.append(f"degenerate layer in {' and '.join(who)} (all cosines equal: AUC 0.5 by "
                     "construction)" if who else "")
    return notes


def _left_out(name: str, p: PairCosines) -> str:
    bad = p.layers[p.degenerate].tolist()
    return f"{name} {', '.join(map(str, bad))}" if bad else f"{name} none"


@comparer("representation_consistency")
def compare_representation(base, tuned, resampler) -> list[dict]:
    poolings = [p for p in dict.fromkeys(need(base, "pairs")["pooling"])
                if p in set(need(tuned, "pairs")["pooling"])]
    rows = []
    for pooling in poolings:
        b, t = PairCosines.of(base, pooling), PairCosines.of(tuned, pooling)
        paired = (same_dataset(base, tuned) and np.array_equal(b.pairs, t.pairs)
                  and np.array_equal(b.positive, t.positive))
        w_base, w_tuned = resampler.pair(len(b.pairs), len(t.pairs), paired, b.positive,
                                         t.positive)
        ones_b, ones_t = np.ones((1, len(b.pairs))), np.ones((1, len(t.pairs)))
        obs = {"base": b.statistics(ones_b), "tuned": t.statistics(ones_t)}
        reps = {"base": b.statistics(w_base), "tuned": t.statistics(w_tuned)}
        unpaired = "" if paired else "different pairs: unpaired"
        common = dict(paired=paired, n_base=len(b.pairs), n_tuned=len(t.pairs))
        grid = "" if same_grid(t.depth, b.depth) else INTERPOLATED
        notes = [join_notes(grid, unpaired, d) for d in _degenerate_notes(b, t)]
        keys = [key(pooling=pooling, layer=int(layer)) for layer in b.layers]
        for metric in ("gap", "auc"):
            rows += bootstrap_rows(
                metric, keys, obs["base"][metric][0],
                to_grid(obs["tuned"][metric][0], t.depth, b.depth), reps["base"][metric],
                to_grid(reps["tuned"][metric], t.depth, b.depth), depths=b.depth,
                notes=notes, **common)
        if b.normed is not None and t.normed is not None:
            normed = {name: (_stats(p.normed[:, None], p.positive, ones),
                             _stats(p.normed[:, None], p.positive, w))
                      for name, p, ones, w in (("base", b, ones_b, w_base),
                                               ("tuned", t, ones_t, w_tuned))}
            for metric in ("gap", "auc"):
                rows += bootstrap_rows(
                    metric, key(pooling=pooling, layer="normed"),
                    normed["base"][0][metric][0], normed["tuned"][0][metric][0],
                    normed["base"][1][metric], normed["tuned"][1][metric], depths=[1.0],
                    notes=join_notes("last block's output through the final norm, each "
                                     "model's own", unpaired), **common)
        s_obs = {"base": b.scopes(obs["base"]), "tuned": t.scopes(obs["tuned"])}
        s_reps = {"base": b.scopes(reps["base"]), "tuned": t.scopes(reps["tuned"])}
        what = ("mean over each model's own layers in the scope (bands of relative depth: "
                "early < 1/3 <= middle < 2/3 <= late)")
        left_out = ("" if not (b.degenerate.any() or t.degenerate.any()) else
                    f"degenerate layers left out: {_left_out('base', b)} / "
                    f"{_left_out('tuned', t)}")
        for metric in ("auc", "gap"):
            for scope in SCOPES:
                name = f"{metric}_{scope}"
                rows += bootstrap_rows(name, key(pooling=pooling), s_obs["base"][name],
                                       s_obs["tuned"][name], s_reps["base"][name][:, None],
                                       s_reps["tuned"][name][:, None],
                                       notes=join_notes(what, left_out, unpaired),
                                       **common)
    return rows
