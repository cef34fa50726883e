"""The C4 analyses (attention_knockout, extraction_rate, subject_enrichment): curves over
layers, tuned - base at the base's layers.

Each model's examples are the queries IT answers correctly, so the examples differ between
the models: the bootstrap resamples each model's examples independently (unpaired). A curve
is a mean over examples per layer; the tuned curve (and each of its replicates) is
interpolated linearly onto the base's relative depths (:mod:`tunescope.compare.depth`). Depth
is the analyses' own: ``(layer + 1) / n_layers`` (block outputs; 1 = the last block).

Compared curves:

- attention_knockout: ``relative_change`` (%) of the target's probability, per block set;
- extraction_rate: ``extraction_rate`` (share of examples), per component. Rates under
  different projections (``unembedding`` vs ``final_norm``, :mod:`tunescope.analyses.recall`)
  are not comparable: every row's note says so (a Result that records no projection predates
  the choice and used ``final_norm``);
- subject_enrichment: ``probability`` of the answer (mean) and ``top1_share`` (share of
  examples where it ranks first), per position. Median ranks are not compared (a median does
  not interpolate or average).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from tunescope.analyses.recall import LEGACY_PROJECTION
from tunescope.compare.depth import same_grid, to_grid
from tunescope.compare.registry import comparer
from tunescope.compare.table import bootstrap_rows, join_notes, key, need
from tunescope.stats.bootstrap import mean_parts, observed, ratio

INTERPOLATED = "tuned interpolated onto the base's relative depths"


def example_curves(per_example: pd.DataFrame, group: str, values: pd.Series
                   ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per value of column ``group``: (layers [L], values [n_examples, L]); rows are all the
    table's examples in sorted order (a missing (example, layer) is NaN)."""
    examples = np.sort(per_example["example"].unique())
    table = per_example[["example", "layer", group]].assign(_value=values.astype(np.float64))
    out = {}
    for name, sub in table.groupby(group, sort=False):
        wide = (sub.pivot(index="example", columns="layer", values="_value")
                .reindex(examples).sort_index(axis=1))
        out[name] = (wide.columns.to_numpy(), wide.to_numpy(np.float64))
    return out


def layer_depths(result, table: str) -> dict[int, float]:
    """Layer -> relative depth, from the Result's curves table ``table``."""
    curves = need(result, table)
    return dict(zip(curves["layer"].astype(int), curves["relative_depth"].astype(float)))


def curve_rows(base, tuned, resampler, *, curves: str, group: str,
               metrics: dict[str, Callable[[pd.DataFrame], pd.Series]]) -> list[dict]:
    """Rows comparing per-layer means over examples of the ``per_example`` tables.

    ``curves``: the Result table with ``layer`` and ``relative_depth``; ``group``: the column
    that splits the curves (block, component, position); ``metrics``: metric name -> the
    per-example value as a function of the ``per_example`` table.
    """
    tables = {"base": need(base, "per_example"), "tuned": need(tuned, "per_example")}
    depth_of = {"base": layer_depths(base, curves), "tuned": layer_depths(tuned, curves)}
    n = {name: t["example"].nunique() for name, t in tables.items()}
    weights = dict(zip(tables, resampler.pair(n["base"], n["tuned"], paired=False)))
    rows = []
    for metric, value_of in metrics.items():
        per = {name: example_curves(t, group, value_of(t)) for name, t in tables.items()}
        for name in [g for g in per["base"] if g in per["tuned"]]:
            obs, reps, depth = {}, {}, {}
            for side in tables:
                layers, values = per[side][name]
                parts = mean_parts(values)
                depth[side] = np.array([depth_of[side][int(layer)] for layer in layers])
                obs[side] = observed(*parts)
                reps[side] = ratio(weights[side], *parts)
            layers = per["base"][name][0]
            rows += bootstrap_rows(
                metric, [key(**{group: name, "layer": int(layer)}) for layer in layers],
                obs["base"], to_grid(obs["tuned"], depth["tuned"], depth["base"]),
                reps["base"], to_grid(reps["tuned"], depth["tuned"], depth["base"]),
                paired=False, n_base=n["base"], n_tuned=n["tuned"], depths=depth["base"],
                notes="" if same_grid(depth["tuned"], depth["base"]) else INTERPOLATED)
    return rows


@comparer("attention_knockout")
def compare_attention_knockout(base, tuned, resampler) -> list[dict]:
    return curve_rows(base, tuned, resampler, curves="curves", group="block",
                      metrics={"relative_change": lambda t: t["relative_change"]})


def projection_of(result) -> str:
    """The projection an extraction_rate Result used: its summary's, else its config's, else
    ``"final_norm"`` (the only projection before the choice existed)."""
    config = result.provenance.get("config") or {}
    return result.summary.get("projection") or config.get("projection") or LEGACY_PROJECTION


def projection_note(base, tuned) -> str:
    """A note when the two extraction_rate Results used different projections, else ``""``."""
    projections = projection_of(base), projection_of(tuned)
    if projections[0] == projections[1]:
        return ""
    return (f"different projections: base {projections[0]!r} vs tuned {projections[1]!r} "
            f"(extraction rates not comparable)")


@comparer("extraction_rate")
def compare_extraction_rate(base, tuned, resampler) -> list[dict]:
    rows = curve_rows(base, tuned, resampler, curves="rates", group="component",
                      metrics={"extraction_rate": lambda t: t["extraction"]})
    note = projection_note(base, tuned)
    for r in rows:
        r["note"] = join_notes(note, r["note"])
    return rows


@comparer("subject_enrichment")
def compare_subject_enrichment(base, tuned, resampler) -> list[dict]:
    return curve_rows(base, tuned, resampler, curves="curves", group="position",
                      metrics={"probability": lambda t: t["probability"],
                               "top1_share": lambda t: t["rank"] == 1})
