"""representation_consistency (C2): paraphrase gap and ROC-AUC per layer and pooling,
tuned - base.

Each model's statistics are computed on its own layers from the per-pair cosines (the
``pairs`` table), then the tuned model's curve is interpolated onto the base's relative depths
(:mod:`tunescope.compare.depth`; the identity for models of equal depth). Depth is the
analysis' own: ``layer / n_layers`` with layer 0 the embedding output and ``n_layers`` the last
block's output.

Bootstrap over pairs, stratified by label (each replicate keeps the numbers of paraphrases and
non-paraphrases, so the AUC is always defined). The pairs are the same sentences in both models
when both Results hold the same pairs (same ids and labels, same dataset): then paired, else
unpaired.

Summary rows (key ``pooling=<p>``, no depth): ``best_auc``, each model's highest AUC over its
own layers, and ``best_gap``, the gap at that layer: the layer the analysis' summary reports.
In each replicate the best layer is chosen again, so the interval includes the uncertainty of
the choice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tunescope.compare.bootstrap import mean_parts, ratio, weighted_auc
from tunescope.compare.depth import same_grid, to_grid
from tunescope.compare.registry import comparer
from tunescope.compare.table import bootstrap_rows, key, need, same_dataset

INTERPOLATED = "tuned interpolated onto the base's relative depths"


@dataclass
class PairCosines:
    """One model's cosines of one pooling: pair ids [n], labels (bool) [n], layers [L], their
    relative depths [L] and the cosines [n, L]."""

    pairs: np.ndarray
    positive: np.ndarray
    layers: np.ndarray
    depth: np.ndarray
    cosines: np.ndarray

    @classmethod
    def of(cls, result, pooling: str) -> "PairCosines":
        table = need(result, "pairs")
        sub = table[table["pooling"] == pooling]
        cos = sub.pivot(index="pair", columns="layer", values="cosine").sort_index()
        labels = sub.groupby("pair")["label"].first().reindex(cos.index)
        layers = need(result, "layers")
        depth = (layers[layers["pooling"] == pooling].set_index("layer")["relative_depth"]
                 .reindex(cos.columns))
        return cls(cos.index.to_numpy(), labels.to_numpy().astype(bool), cos.columns.to_numpy(),
                   depth.to_numpy(np.float64), cos.to_numpy(np.float64))

    def statistics(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """``gap`` (mean cosine of paraphrases minus non-paraphrases) and ``auc`` per layer,
        [n_boot, L] each, under the pair ``weights`` [n_boot, n]."""
        para = mean_parts(np.where(self.positive[:, None], self.cosines, np.nan))
        non = mean_parts(np.where(self.positive[:, None], np.nan, self.cosines))
        return {"gap": ratio(weights, *para) - ratio(weights, *non),
                "auc": weighted_auc(self.cosines, self.positive, weights)}


def best_layer(stats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per replicate [n_boot]: the layer index of the highest AUC (the shallowest on ties), that
    AUC (``best_auc``) and the gap there (``best_gap``)."""
    layer = np.argmax(stats["auc"], axis=1)
    pick = np.arange(len(layer))
    return {"layer": layer, "best_auc": stats["auc"][pick, layer],
            "best_gap": stats["gap"][pick, layer]}


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
        obs = {"base": b.statistics(np.ones((1, len(b.pairs)))),
               "tuned": t.statistics(np.ones((1, len(t.pairs))))}
        reps = {"base": b.statistics(w_base), "tuned": t.statistics(w_tuned)}
        unpaired = "" if paired else "different pairs: unpaired"
        note = ", ".join(filter(None, ["" if same_grid(t.depth, b.depth) else INTERPOLATED,
                                       unpaired]))
        keys = [key(pooling=pooling, layer=int(layer)) for layer in b.layers]
        for metric in ("gap", "auc"):
            rows += bootstrap_rows(
                metric, keys, obs["base"][metric][0],
                to_grid(obs["tuned"][metric][0], t.depth, b.depth), reps["base"][metric],
                to_grid(reps["tuned"][metric], t.depth, b.depth), paired=paired,
                n_base=len(b.pairs), n_tuned=len(t.pairs), depths=b.depth, notes=note)
        best_obs = {name: best_layer(v) for name, v in obs.items()}
        best_reps = {name: best_layer(v) for name, v in reps.items()}
        lb, lt = best_obs["base"]["layer"][0], best_obs["tuned"]["layer"][0]
        where = (f"best layer by AUC, each model's own: base {b.layers[lb]} (depth "
                 f"{b.depth[lb]:.2f}), tuned {t.layers[lt]} (depth {t.depth[lt]:.2f})")
        for metric in ("best_auc", "best_gap"):
            rows += bootstrap_rows(metric, key(pooling=pooling), best_obs["base"][metric],
                                   best_obs["tuned"][metric], best_reps["base"][metric][:, None],
                                   best_reps["tuned"][metric][:, None], paired=paired,
                                   n_base=len(b.pairs), n_tuned=len(t.pairs),
                                   notes=", ".join(filter(None, [where, unpaired])))
    return rows
