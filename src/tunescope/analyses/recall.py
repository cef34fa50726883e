"""Mechanics of factual recall (docs/methods.md#c4, after Geva et al. 2023): attention knockout,
extraction rates and subject enrichment, on queries the model answers correctly.

Layers are blocks 0..n_layers-1. Probabilities are in [0, 1]; relative changes in percent.

Knockout's "non-subject" set is every position before the last that is not a subject token;
position 0 is left out only when it holds the tokenizer's BOS or another special token (a model
without BOS, such as SmolLM2, has a real word there, and it is kept).

Extraction rates project each sublayer's output at the last position to the vocabulary in one of
two ways (``ExtractionConfig.projection``): ``"unembedding"`` (default) multiplies it by the
unembedding alone, ``W_U h``, as Geva et al.'s released code does, so that the numbers match the
published ones; ``"final_norm"`` applies the final norm first, ``W_U final_norm(h)`` (the logit
lens). They can disagree: the residual stream's scale differs by orders of magnitude between
layers, components and dimensions; the final norm rescales each vector and reweights its
dimensions with a learned gain (LayerNorm also centres it), so without it the projection favours
the large-magnitude directions that the model damps before its own unembedding (a vector's
overall scale alone never changes its argmax). ``W_U`` is the output head as the anatomy gives
it (``lm_head``; for Gemma the raw tied embedding matrix, not the ``sqrt(d_model)``-scaled input
embedding). Final logit soft-capping (Gemma 2) is not applied: tanh is monotone, so it never
changes the argmax, and leaving it out avoids ties where large unnormalised logits would saturate
it. Subject enrichment always uses the logit lens (final norm + unembedding).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from scipy import stats

from tunescope.analyses.helpers.recall_examples import (
    RecallExample,
    examples_table,
    select_examples,
)
from tunescope.analyses.registry import register
from tunescope.analyses.skeleton import AnalysisRun
from tunescope.common.progress import progress
from tunescope.data.types import Relation
from tunescope.engine.batching import BatchSizer, left_pad
from tunescope.engine.cache import cache_of, select_cache, with_cache
from tunescope.errors import TunescopeError
from tunescope.models.depth import relative_depth
from tunescope.models.hooks import block_attention, trace
from tunescope.models.lm import LM
from tunescope.result import Result, fingerprint

BLOCK_SETS = ("subject", "non_subject", "last")
COMPONENTS = ("attn_out", "mlp_out", "resid_post")
PROJECTIONS = ("unembedding", "final_norm")
LEGACY_PROJECTION = "final_norm"
"""What extraction rates recorded without a ``projection`` used (the only projection before)."""


@dataclass(frozen=True)
class RecallConfig:
    """Settings shared by the C4 analyses.

    max_examples / per_relation: how many correctly answered queries to use (in dataset order).
    window: attention knockout blocks ``window`` layers centred on each layer (clipped).
    rows_per_pass: counterfactual rows run in one forward pass (knockout).
    batch_size: examples per forward pass (extraction, enrichment); None: the engine's default
        (16 on CPU, 64 on an accelerator). Both sizes halve on out-of-memory.
    """

    max_examples: int = 100
    per_relation: int | None = None
    window: int = 9
    rows_per_pass: int = 128
    batch_size: int | None = None


@dataclass(frozen=True)
class ExtractionConfig(RecallConfig):
    """Settings of ``extraction_rate``: those of :class:`RecallConfig`, and

    projection: how a sublayer output ``h`` is read as logits: ``"unembedding"`` (``W_U h``, as
        Geva et al.'s released code; default) or ``"final_norm"`` (``W_U final_norm(h)``, the
        logit-lens convention).
    """

    projection: str = "unembedding"

    def __post_init__(self):
        if self.projection not in PROJECTIONS:
            raise TunescopeError(f"unknown projection {self.projection!r} for extraction_rate; "
                                 f"use one of {', '.join(map(repr, PROJECTIONS))}")


def extraction_config(config: RecallConfig) -> ExtractionConfig:
    """``config`` as an :class:`ExtractionConfig` (a plain :class:`RecallConfig` gets the
    default projection); validates the projection."""
    if isinstance(config, ExtractionConfig):
        return config
    return ExtractionConfig(**asdict(config))


def project(anatomy, resid: torch.Tensor, projection: str) -> torch.Tensor:
    """Vocabulary logits [..., vocab] of vectors ``resid`` [..., d_model] under ``projection``
    (see the module docstring); no soft-capping (it never changes the argmax)."""
    if projection == "final_norm":
        resid = anatomy.final_norm(resid)
    elif projection != "unembedding":
        raise TunescopeError(f"unknown projection {projection!r}; use one of "
                             f"{', '.join(map(repr, PROJECTIONS))}")
    return anatomy.unembed(resid)


def _examples(lm, relations, config) -> tuple[list[RecallExample], pd.DataFrame]:
    if not relations:
        raise TunescopeError("no relations given")
    examples, queried = select_examples(lm, relations, config.max_examples, config.per_relation)
    if not examples:
        counts = queried["status"].value_counts().to_dict()
        raise TunescopeError(f"the model answers none of the {len(queried)} queries correctly "
                             f"(statuses: {counts}); C4 needs correctly answered queries")
    return examples, queried


def _dataset(relations, queried) -> dict:
    return {"kind": "pararel", "relations": [r.id for r in relations], "size": len(queried),
            "fingerprint": fingerprint([[r.id, [t.pattern for t in r.templates],
                                         [(f.subject, f.object) for f in r.facts]]
                                        for r in relations])}


def _status_table(queried: pd.DataFrame) -> pd.DataFrame:
    return (queried.groupby(["relation", "status"], sort=False).size()
            .rename("n_queries").reset_index())


def mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of ``values`` (NaN bounds for fewer than 2)."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, np.nan, np.nan
    half = stats.t.ppf((1 + level) / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return mean, mean - half, mean + half


def window_layers(layer: int, window: int, n_layers: int) -> range:
    """The ``window`` layers centred on ``layer`` (``window // 2`` on each side), clipped."""
    half = window // 2
    return range(max(0, layer - half), min(n_layers, layer + window - half))


def special_ids(tokenizer) -> frozenset[int]:
    """The tokenizer's BOS id and every id of ``tokenizer.all_special_ids``."""
    ids = set(getattr(tokenizer, "all_special_ids", None) or ())
    if getattr(tokenizer, "bos_token_id", None) is not None:
        ids.add(tokenizer.bos_token_id)
    return frozenset(int(i) for i in ids)


def knockout_keys(example: RecallExample, block: str, special: Collection[int] = ()
                  ) -> list[int]:
    """Key positions (unpadded) that the last position may not read under ``block``: the
    subject's tokens; every other position before the last (``"non_subject"``), except
    position 0 when its token id is in ``special`` (BOS or another special token, see
    :func:`special_ids`; a real word there is kept); or the last itself."""
    last = len(example.input_ids) - 1
    first, final = example.subject
    if block == "subject":
        return list(range(first, final + 1))
    if block == "non_subject":
        start = 1 if example.input_ids[0] in special else 0
        return [p for p in range(start, last) if not first <= p <= final]
    if block == "last":
        return [last]
    raise ValueError(f"unknown block set {block!r}")


def knockout_rows(examples: Sequence[RecallExample], n_layers: int
                  ) -> list[tuple[int, int, str]]:
    """Every counterfactual run: (example index, layer, block set)."""
    return [(e, layer, block) for e in range(len(examples)) for layer in range(n_layers)
            for block in BLOCK_SETS]


@torch.inference_mode()
def _target_probs(lm, examples, rows, window, blocked_for) -> np.ndarray:
    """Probability of each row's target token with that row's edges knocked out.

    ``rows``: (example index, layer, block) or (example index, None, None) for a clean run.
    Knockout only removes edges *from the last position*, so every earlier position computes
    exactly what the clean run computes: each example's prefix (all but its last token) runs
    once, and every counterfactual row runs just the last token on top of that prefix's
    key/value cache, with its own edges removed in its own window of layers.
    """
    n_layers = lm.anatomy.n_layers
    needed = sorted({e for e, _, _ in rows})
    slot = {e: i for i, e in enumerate(needed)}
    prefix = left_pad([examples[e].input_ids[:-1] for e in needed], lm.tokenizer.pad_token_id,
                      lm.device)
    cache = cache_of(lm.model(**prefix.model_inputs(), use_cache=True, logits_to_keep=1))
    width = prefix.input_ids.shape[1]             # keys: padded prefix, then the last token
    edges = torch.zeros((n_layers, len(rows), 1, width + 1), dtype=torch.bool)
    for r, (e, layer, block) in enumerate(rows):
        if layer is None:
            continue
        n = len(examples[e].input_ids)
        keys = [k + width - (n - 1) if k < n - 1 else width for k in blocked_for(examples[e], block)]
        for l in window_layers(layer, window, n_layers):
            edges[l, r, 0, keys] = True
    picks = torch.tensor([slot[e] for e, _, _ in rows], device=lm.device)
    last = torch.tensor([[examples[e].input_ids[-1]] for e, _, _ in rows], device=lm.device)
    mask = torch.cat([prefix.attention_mask[picks], torch.ones_like(last)], dim=1)
    with block_attention(lm, {l: edges[l].to(lm.device) for l in range(n_layers)}):
        logits = lm.model(input_ids=last, attention_mask=mask,
                          position_ids=prefix.lengths[picks, None],
                          **with_cache(lm.model, select_cache(cache, picks)), use_cache=True).logits
    probs = torch.softmax(logits[:, -1].float(), dim=-1)
    targets = torch.tensor([examples[e].target for e, _, _ in rows], device=probs.device)
    return probs[torch.arange(len(rows)), targets].cpu().numpy()


def knockout_effects(lm: LM, examples: Sequence[RecallExample], window: int = 9,
                     rows_per_pass: int = 128) -> pd.DataFrame:
    """Relative change (%) of the target's probability for every (example, layer, block set),
    computed with many counterfactual rows per forward pass (``rows_per_pass``, halved on
    out-of-memory)."""
    n_layers = lm.anatomy.n_layers
    special = special_ids(lm.tokenizer)

    def keys(example, block):
        return knockout_keys(example, block, special)

    clean = [(e, None, None) for e in range(len(examples))]
    rows = knockout_rows(examples, n_layers)
    work = clean + rows
    work_sorted = sorted(range(len(work)), key=lambda i: -len(examples[work[i][0]].input_ids))
    probs = np.empty(len(work))
    with progress(len(work), f"{lm.name}: attention knockout") as bar:
        def run_rows(chunk):
            probs[chunk] = _target_probs(lm, examples, [work[i] for i in chunk], window, keys)
            bar.advance(len(chunk))

        BatchSizer(rows_per_pass).run(work_sorted, run_rows)
    base = probs[:len(clean)]
    knocked = probs[len(clean):]
    table = pd.DataFrame(rows, columns=["example", "layer", "block"])
    table["probability_base"] = base[table["example"]]
    table["probability"] = knocked
    table["relative_change"] = 100 * (knocked - table["probability_base"]) / table["probability_base"]
    return table


def _curves(table: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    rows = []
    for key, group in table.groupby(keys, sort=True):
        mean, low, high = mean_ci(group[value].to_numpy())
        rows.append({**dict(zip(keys, key)), "mean": mean, "ci_low": low, "ci_high": high,
                     "n": len(group)})
    return pd.DataFrame(rows)


def _with_relative_depth(table: pd.DataFrame, n_layers: int) -> pd.DataFrame:
    return table.assign(relative_depth=relative_depth(table["layer"].to_numpy(), n_layers))


@register("attention_knockout", RecallConfig, dataset="pararel")
def attention_knockout(lm: LM, relations: Sequence[Relation],
                       config: RecallConfig = RecallConfig()) -> Result:
    """Attention knockout: where does information flow to the last position (C4)?"""
    run = AnalysisRun("attention_knockout", lm, config)
    examples, queried = _examples(lm, relations, config)
    effects = knockout_effects(lm, examples, config.window, config.rows_per_pass)
    effects.insert(1, "relation", [examples[e].relation for e in effects["example"]])
    curves = _with_relative_depth(_curves(effects, ["layer", "block"], "relative_change"),
                                  lm.anatomy.n_layers)
    summary = {"n_examples": len(examples), "window": config.window}
    for block in BLOCK_SETS:
        c = curves[curves["block"] == block]
        worst = c.loc[c["mean"].idxmin()]
        summary[f"{block}_strongest_layer"] = int(worst["layer"])
        summary[f"{block}_strongest_change"] = float(worst["mean"])
    return run.result({"curves": curves, "per_example": effects,
                       "examples": examples_table(lm, examples), "queries": _status_table(queried)},
                      summary, _dataset(relations, queried))


def _traced_last(lm, examples, points, positions_of, run: AnalysisRun, desc, read) -> list:
    """Run ``examples`` in batches of ``run``'s size (halved on out-of-memory), each with
    ``positions_of(example, offset)`` -> the positions recorded per example, and return the
    concatenated ``read(example indices, trace)`` row lists."""
    def batch_rows(idx):
        batch = left_pad([examples[i].input_ids for i in idx], lm.tokenizer.pad_token_id,
                         lm.device)
        T = batch.input_ids.shape[1]
        pos = torch.tensor([positions_of(examples[i], T - len(examples[i].input_ids))
                            for i in idx], device=lm.device)
        with torch.inference_mode():
            with trace(lm, points=points, positions=pos) as rec:
                lm.model(**batch.model_inputs(), logits_to_keep=1)
            rows = read(idx, rec)
        bar.advance(len(idx))
        return rows

    with progress(len(examples), desc) as bar:
        parts = run.batches(list(range(len(examples))), batch_rows)
    return [row for part in parts for row in part]


@register("extraction_rate", ExtractionConfig, dataset="pararel")
def extraction_rate(lm: LM, relations: Sequence[Relation],
                    config: RecallConfig = ExtractionConfig()) -> Result:
    """Extraction rate: at which layer and sublayer is the final prediction already top-1 (C4)?

    Each sublayer output at the last position is read as logits under ``config.projection``
    (see the module docstring; a plain :class:`RecallConfig` gets the default, "unembedding").
    """
    config = extraction_config(config)
    run = AnalysisRun("extraction_rate", lm, config)
    examples, queried = _examples(lm, relations, config)

    def read(idx, rec):
        rows = []
        for component in COMPONENTS:        # every layer in one projection: W_U read once
            stacked = torch.stack([rec[component][layer][:, 0]
                                   for layer in range(lm.anatomy.n_layers)])       # [L, B, d]
            tops = project(lm.anatomy, stacked, config.projection).argmax(-1).cpu()  # [L, B]
            for layer, top in enumerate(tops):
                for i, t in zip(idx, top):
                    rows.append({"example": i, "relation": examples[i].relation, "layer": layer,
                                 "component": component, "top1": int(t),
                                 "extraction": int(t) == examples[i].target})
        return rows

    rows = _traced_last(lm, examples, COMPONENTS, lambda e, off: [off + len(e.input_ids) - 1],
                        run, f"{lm.name}: extraction rates", read)
    per_example = (pd.DataFrame(rows).sort_values(["example", "component", "layer"], kind="stable")
                   .reset_index(drop=True))
    rates = (per_example.groupby(["layer", "component"], sort=True)["extraction"]
             .agg(rate="mean", n="size").reset_index())
    rates = _with_relative_depth(rates, lm.anatomy.n_layers)
    summary = {"n_examples": len(examples), "projection": config.projection}
    for component in COMPONENTS:
        r = rates[rates["component"] == component]
        hits = r[r["rate"] >= 0.5]
        summary[f"{component}_first_layer_rate_0.5"] = int(hits["layer"].min()) if len(hits) else None
        summary[f"{component}_max_rate"] = float(r["rate"].max())
    return run.result({"rates": rates, "per_example": per_example,
                       "examples": examples_table(lm, examples), "queries": _status_table(queried)},
                      summary, _dataset(relations, queried))


@register("subject_enrichment", RecallConfig, dataset="pararel")
def subject_enrichment(lm: LM, relations: Sequence[Relation],
                       config: RecallConfig = RecallConfig()) -> Result:
    """Subject enrichment: logit-lens rank and probability of the answer at the last subject
    token and at the last token, per layer (C4)."""
    run = AnalysisRun("subject_enrichment", lm, config)
    examples, queried = _examples(lm, relations, config)
    where = ("last_subject_token", "last_token")

    def positions(e, off):
        return [off + e.subject[1], off + len(e.input_ids) - 1]

    def read(idx, rec):
        rows = []
        targets = torch.tensor([examples[i].target for i in idx], device=lm.device)
        for layer in range(lm.anatomy.n_layers):
            logits = lm.anatomy.logits(rec["resid_post"][layer]).float()   # [B, 2, vocab]
            target_logit = logits.gather(-1, targets[:, None, None].expand(-1, 2, 1))
            rank = (logits > target_logit).sum(-1) + 1                    # [B, 2]
            prob = torch.softmax(logits, -1).gather(-1, targets[:, None, None].expand(-1, 2, 1))[..., 0]
            for b, i in enumerate(idx):
                for p, name in enumerate(where):
                    rows.append({"example": i, "relation": examples[i].relation, "layer": layer,
                                 "position": name, "rank": int(rank[b, p]),
                                 "probability": float(prob[b, p])})
        return rows

    rows = _traced_last(lm, examples, ("resid_post",), positions, run,
                        f"{lm.name}: subject enrichment", read)
    per_example = (pd.DataFrame(rows).sort_values(["example", "position", "layer"], kind="stable")
                   .reset_index(drop=True))
    curves = (per_example.groupby(["layer", "position"], sort=True)
              .agg(mean_rank=("rank", "mean"), median_rank=("rank", "median"),
                   mean_probability=("probability", "mean"),
                   top1_share=("rank", lambda r: float((r == 1).mean())), n=("rank", "size"))
              .reset_index())
    curves = _with_relative_depth(curves, lm.anatomy.n_layers)
    summary = {"n_examples": len(examples)}
    for name in where:
        c = curves[curves["position"] == name]
        summary[f"{name}_best_median_rank"] = float(c["median_rank"].min())
        summary[f"{name}_best_layer"] = int(c.loc[c["median_rank"].idxmin(), "layer"])
    return run.result({"curves": curves, "per_example": per_example,
                       "examples": examples_table(lm, examples), "queries": _status_table(queried)},
                      summary, _dataset(relations, queried))
