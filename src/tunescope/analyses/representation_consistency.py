r"""representation_consistency (docs/methods.md#c2): do paraphrases lie closer together than
non-paraphrases in the model's residual stream, layer by layer?

Every distinct sentence of the pairs is run through the model once; one forward pass per batch
records every layer and pools it right away (:mod:`tunescope.engine.pooling`):

=============  ===================================================================================
layer 0        the embedding output (the ``embed`` hook point)
layer l + 1    the output of block ``l`` (``resid_post``), *before* the final norm; layer
               ``n_layers`` is the last block's output without the final norm
n_layers + 1   (``normed=True`` in the tables; with ``normed``, the default) the last block's
               output through the final norm, as the unembedding reads it. Same relative
               depth (1.0) as layer ``n_layers``, so it is reported beside the curve and left
               out of the layer means and bands (counting it would count the last block twice)
=============  ===================================================================================

Poolings: ``"mean"`` over the sentence's tokens, leaving out position 0 only where it holds a
special token (BOS or another special id: the attention sink), a real word there is kept;
``"mean_all"`` over every token; ``"last"`` the last token.

Per pair, layer and pooling the cosine similarity of the two pooled vectors is taken; per layer
and pooling: the mean cosine of paraphrases (label 1) and non-paraphrases (label 0), their gap
and the ROC-AUC of cosine separating the two; for all pairs (``source="all"``) and, when the
pairs come from two sources or more, per source (a source whose pairs all have one label is
skipped and flagged).

**Lexical-overlap control.** The same ROC-AUC from each pair's word overlap: the Jaccard index
``|A & B| / |A | B|`` of the two sentences' sets of word tokens, a word token being a match of
the regular expression ``\w+`` (Unicode letters, digits and underscore) in the lower-cased
sentence (two sentences without any word token: 1.0). Model-independent; where non-paraphrases
share more words than paraphrases its AUC is below 0.5, and a model AUC near it may only read
surface overlap.

**Pre-declared summaries** (instead of the best layer, which is biased upward and unequal
across depths). A layer is *degenerate* when all its pair cosines are equal within
``degenerate_tol`` (e.g. last-token pooling at the embedding output when every sentence ends
in "."; this includes zero variance within both labels at one value): its AUC is 0.5 by
construction and says nothing about the model; it is flagged (``degenerate`` column,
``summary["flags"]``) and left out. Over the remaining layers 0..n_layers, per pooling and
source: the mean AUC and mean gap over all layers (``scope="all_layers"``) and per band of
relative depth ``d = layer / n_layers``: ``early`` ``d < 1/3`` (layer 0 included), ``middle``
``1/3 <= d < 2/3``, ``late`` ``d >= 2/3`` (the last block included). Each with a 95%
percentile bootstrap interval over pairs, resampled within each label (``n_boot`` replicates
from ``numpy.random.default_rng(seed)``; the degenerate layers are fixed from the observed
data). The final-normed layer is in no band.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.stats import rankdata

from tunescope.analyses.registry import register
from tunescope.analyses.skeleton import AnalysisRun
from tunescope.data.types import ParaphrasePair
from tunescope.engine.batching import encode
from tunescope.engine.pooling import check_poolings, pooled_states
from tunescope.errors import TunescopeError
from tunescope.models.depth import hidden_state_depth
from tunescope.models.lm import LM
from tunescope.result import Result, fingerprint
from tunescope.stats import bootstrap

BANDS = ("early", "middle", "late")
"""Bands of relative depth ``d = layer / n_layers``: [0, 1/3), [1/3, 2/3), [2/3, 1]."""
SCOPES = ("all_layers",) + BANDS
"""The pre-declared summaries: the mean over all (non-degenerate) layers, then per band."""
ALL = "all"
"""The ``source`` of rows over every pair."""
NORMED = "normed"
"""The ``band`` of the final-normed layer (in no band)."""
WORD = re.compile(r"\w+")
"""A word token of the lexical-overlap control (matched in the lower-cased sentence)."""


@dataclass(frozen=True)
class RepresentationConfig:
    """Settings of :func:`representation_consistency`.

    Attributes:
        poolings: how a sentence's token vectors become one vector, any of
            :data:`tunescope.engine.pooling.POOLINGS` (``"mean"`` over its tokens but a
            special first one, ``"mean_all"`` over all, ``"last"``).
        normed: also report the last block's output through the final norm (layer
            ``n_layers + 1``, ``normed=True``).
        n_boot: bootstrap replicates of the summaries' intervals.
        seed: seed of the bootstrap.
        degenerate_tol: cosines within this of each other count as equal (degenerate layer).
        batch_size: starting batch size (None: the device default; halves on out-of-memory).
        chat: wrap each sentence in the model's chat template as one user turn.
    """

    poolings: tuple[str, ...] = ("mean", "last")
    normed: bool = True
    n_boot: int = 1000
    seed: int = 0
    degenerate_tol: float = 1e-6
    batch_size: int | None = None
    chat: bool = False


def roc_auc(scores, labels) -> np.ndarray:
    """ROC-AUC of ``scores`` separating label 1 from label 0, by the Mann–Whitney rank formula
    (tied scores count one half).

    Args:
        scores: array [n] or [n, k] (k score columns rated at once).
        labels: array [n] of 0/1.

    Returns: a float (scores [n]) or float64 array [k]: the probability that a random label-1
    item scores higher than a random label-0 item.
    """
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(labels).astype(bool)
    n1 = int(positive.sum())
    n0 = len(positive) - n1
    if n1 == 0 or n0 == 0:
        raise TunescopeError("ROC-AUC is undefined unless both labels occur "
                             f"(got {n1} with label 1 and {n0} with label 0)")
    ranks = rankdata(scores, axis=0)
    return (ranks[positive].sum(axis=0) - n1 * (n1 + 1) / 2) / (n1 * n0)


def sentence_ids(lm: LM, sentences: Sequence[str], chat: bool = False) -> list[list[int]]:
    """Token ids of each sentence as the model reads it (special tokens included).

    With ``chat`` the sentence is wrapped as one user turn by the chat template (a template
    that writes BOS itself still gives one BOS: :func:`tunescope.engine.batching.encode`).
    """
    if not chat:
        return encode(lm, sentences)
    if not lm.has_chat_template:
        raise TunescopeError(f"model '{lm.name}' has no chat template; use chat=False")
    return encode(lm, [lm.format_prompt(s, chat=True) for s in sentences])


def pair_cosines(vectors: torch.Tensor, a: Sequence[int], b: Sequence[int],
                 chunk: int = 1024) -> np.ndarray:
    """Cosine similarity of ``vectors[a[i]]`` and ``vectors[b[i]]`` at every layer.

    Args:
        vectors: [n_sentences, n_layers + 1, d_model].
        a, b: sentence indices of each pair's two sentences ([n_pairs] each).

    Returns: float64 array [n_pairs, n_layers + 1] (computed ``chunk`` pairs at a time).
    """
    unit = torch.nn.functional.normalize(vectors, dim=-1)
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    parts = [(unit[a[s:s + chunk]] * unit[b[s:s + chunk]]).sum(-1)
             for s in range(0, len(a), chunk)]
    return torch.cat(parts).double().numpy()


def word_tokens(text: str) -> set[str]:
    """The set of word tokens of the lexical control: matches of ``\\w+`` in ``text.lower()``."""
    return set(WORD.findall(text.lower()))


def lexical_overlap(a: str, b: str) -> float:
    """Jaccard index of the two sentences' word-token sets (:func:`word_tokens`); 1.0 when
    neither has a word token."""
    x, y = word_tokens(a), word_tokens(b)
    union = x | y
    return len(x & y) / len(union) if union else 1.0


def lexical_control(overlap, labels) -> dict:
    """The lexical-overlap control of pairs with word Jaccard ``overlap`` [n] and ``labels``
    [n]: ``paraphrase_mean``, ``nonparaphrase_mean``, ``gap``, ``auc`` (of the overlap
    separating label 1 from 0), ``n_pairs``."""
    overlap = np.asarray(overlap, dtype=np.float64)
    positive = np.asarray(labels).astype(bool)
    para, non = float(overlap[positive].mean()), float(overlap[~positive].mean())
    return {"paraphrase_mean": para, "nonparaphrase_mean": non, "gap": para - non,
            "auc": float(roc_auc(overlap, positive)), "n_pairs": len(overlap)}


def degenerate_layers(cosines: np.ndarray, tol: float = 1e-6) -> np.ndarray:
    """Bool [L]: layers whose cosines [n_pairs, L] cannot rank the pairs at all: every cosine
    of the layer within ``tol`` of the others (max - min <= tol; e.g. last-token pooling at the
    embedding output when every sentence ends in "."). Their AUC is 0.5 and their gap 0 by
    construction. (Cosines constant within each label but at two different values are a
    perfect separation, not a degenerate layer.)"""
    cosines = np.asarray(cosines, dtype=np.float64)
    if not len(cosines):
        return np.ones(cosines.shape[1], dtype=bool)
    return np.ptp(cosines, axis=0) <= tol


def band_of(layers, n_layers: int) -> np.ndarray:
    """The depth band (:data:`BANDS`) of each hidden-state index in 0..n_layers: ``early`` when
    ``3 * layer < n_layers``, ``middle`` when ``n_layers <= 3 * layer < 2 * n_layers``,
    ``late`` otherwise (integer arithmetic: the edges 1/3 and 2/3 are exact)."""
    layers = np.asarray(layers)
    index = np.minimum(3 * layers // max(n_layers, 1), 2)
    return np.asarray(BANDS, dtype=object)[index]


def scope_masks(bands, usable) -> dict[str, np.ndarray]:
    """Per scope of :data:`SCOPES`: bool [L] of the layers it averages (``usable`` ones: not
    degenerate, not the normed layer; ``all_layers`` = every usable layer)."""
    bands, usable = np.asarray(bands, dtype=object), np.asarray(usable, dtype=bool)
    return {"all_layers": usable, **{b: usable & (bands == b) for b in BANDS}}


def scope_means(values: np.ndarray, masks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Mean of ``values`` [..., L] over each scope's layers: {scope: [...]} (NaN when a scope
    has no layer)."""
    values = np.asarray(values, dtype=np.float64)
    out = {}
    for scope, mask in masks.items():
        out[scope] = (values[..., mask].mean(-1) if mask.any()
                      else np.full(values.shape[:-1], np.nan))
    return out


def layer_metrics(cosines: np.ndarray, labels: np.ndarray, layers=None, n_layers=None,
                  tol: float = 1e-6) -> pd.DataFrame:
    """Per-layer separation of paraphrases from non-paraphrases.

    Args:
        cosines: [n_pairs, L] cosine similarities.
        labels: [n_pairs] of 0/1.
        layers: the L layer indices (default 0..L-1); an index above ``n_layers`` is the
            final-normed layer.
        n_layers: the model's number of blocks (default L - 1).
        tol: of :func:`degenerate_layers`.

    Returns: one row per layer: ``layer``, ``normed``, ``relative_depth`` (layer / n_layers;
    1.0 for the normed layer), ``band``, ``paraphrase_mean``, ``nonparaphrase_mean``, ``gap``
    (their difference), ``auc``, ``degenerate``, ``n_pairs``.
    """
    positive = np.asarray(labels).astype(bool)
    layers = np.arange(cosines.shape[1]) if layers is None else np.asarray(layers)
    n_layers = cosines.shape[1] - 1 if n_layers is None else n_layers
    normed = layers > n_layers
    para, non = cosines[positive].mean(0), cosines[~positive].mean(0)
    return pd.DataFrame({
        "layer": layers, "normed": normed,
        "relative_depth": hidden_state_depth(np.minimum(layers, n_layers), n_layers),
        "band": np.where(normed, NORMED, band_of(np.minimum(layers, n_layers), n_layers)),
        "paraphrase_mean": para, "nonparaphrase_mean": non, "gap": para - non,
        "auc": roc_auc(cosines, positive),
        "degenerate": degenerate_layers(cosines, tol), "n_pairs": len(positive)})


def bootstrap_scopes(cosines: np.ndarray, positive: np.ndarray, masks: dict[str, np.ndarray],
                     weights: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Replicates of the scope means: ``{"auc" | "gap": {scope: [n_boot]}}`` from pair
    ``weights`` [n_boot, n] (layers outside every scope are not computed)."""
    boot = bootstrap
    positive = np.asarray(positive, dtype=bool)
    used = np.zeros(cosines.shape[1], dtype=bool)
    for mask in masks.values():
        used |= mask
    auc = np.full((weights.shape[0], cosines.shape[1]), np.nan)
    gap = auc.copy()
    if used.any():
        cos = cosines[:, used]
        auc[:, used] = boot.weighted_auc(cos, positive, weights)
        para = boot.mean_parts(np.where(positive[:, None], cos, np.nan))
        non = boot.mean_parts(np.where(positive[:, None], np.nan, cos))
        gap[:, used] = boot.ratio(weights, *para) - boot.ratio(weights, *non)
    return {"auc": scope_means(auc, masks), "gap": scope_means(gap, masks)}


def _summaries(metrics: pd.DataFrame, cosines: np.ndarray, positive: np.ndarray,
               weights: np.ndarray) -> list[dict]:
    """The pre-declared summary rows (scope x metric) of one (pooling, source)."""
    usable = ~metrics["normed"].to_numpy() & ~metrics["degenerate"].to_numpy()
    masks = scope_masks(metrics["band"].to_numpy(), usable)
    reps = bootstrap_scopes(cosines, positive, masks, weights)
    rows = []
    for metric in ("auc", "gap"):
        observed = scope_means(metrics[metric].to_numpy(), masks)
        for scope in SCOPES:
            low, high = bootstrap.percentile_ci(reps[metric][scope][:, None])
            rows.append({"scope": scope, "metric": metric, "value": float(observed[scope]),
                         "ci_low": float(low[0]), "ci_high": float(high[0]),
                         "n_layers_used": int(masks[scope].sum()),
                         "layers_used": ",".join(map(str, metrics["layer"][masks[scope]]))})
    return rows


def _check(pairs: Sequence[ParaphrasePair], config: RepresentationConfig) -> None:
    if not pairs:
        raise TunescopeError("no paraphrase pairs given")
    labels = {p.label for p in pairs}
    if len(labels) < 2:
        raise TunescopeError(f"all {len(pairs)} pairs have label {labels.pop()}: ROC-AUC (and the "
                             "gap) need both paraphrases (1) and non-paraphrases (0)")
    if any(p.source == ALL for p in pairs):
        raise TunescopeError(f"source name {ALL!r} is reserved for the rows over every pair")
    if config.n_boot < 1:
        raise TunescopeError(f"n_boot must be at least 1, got {config.n_boot}")
    check_poolings(config.poolings)


def _scopes(pairs: Sequence[ParaphrasePair], labels: np.ndarray) -> tuple[dict, list[str]]:
    """``{source: pair indices}`` ("all" first, then each source when there are two or more,
    sorted) and the flag lines of sources skipped for having one label only."""
    scopes = {ALL: np.arange(len(pairs))}
    sources = np.array([p.source for p in pairs], dtype=object)
    names = sorted(set(sources.tolist()))
    skipped = []
    if len(names) > 1:
        for name in names:
            where = np.flatnonzero(sources == name)
            kinds = set(labels[where].tolist())
            if len(kinds) < 2:
                skipped.append(f"source {name!r}: all {len(where)} pairs have label "
                               f"{kinds.pop()}; no per-source metrics (its pairs count in "
                               f"source 'all')")
            else:
                scopes[name] = where
    return scopes, skipped


def _degenerate_flag(pooling: str, source: str, layers: Sequence[int], n_layers: int,
                     tol: float) -> str:
    names = [f"{l} (normed)" if l > n_layers else str(l) for l in layers]
    where = f"{pooling} pooling" + ("" if source == ALL else f", source {source!r}")
    return (f"{where}: degenerate layer{'s' if len(names) > 1 else ''} {', '.join(names)} (all "
            f"pair cosines equal within {tol:g}: AUC 0.5 and gap 0 by construction); left out "
            f"of the layer means and bands")


@register("representation_consistency", RepresentationConfig, dataset="pairs")
def representation_consistency(lm: LM, pairs: Sequence[ParaphrasePair],
                               config: RepresentationConfig = RepresentationConfig()) -> Result:
    """Cosine similarity of paraphrase vs non-paraphrase representations, per layer (C2).

    Tables:
        ``pairs``: one row per (pair, pooling, layer): ``pair`` (index into ``pairs``),
        ``pooling``, ``layer`` (``n_layers + 1`` = final-normed), ``cosine``, ``label``,
        ``source``.
        ``layers``: one row per (pooling, source, layer): ``pooling``, ``source`` (``"all"``
        over every pair, else one source), and the columns of :func:`layer_metrics`:
        ``layer``, ``normed``, ``relative_depth``, ``band``, ``paraphrase_mean``,
        ``nonparaphrase_mean``, ``gap``, ``auc``, ``degenerate``, ``n_pairs``.
        ``summaries``: the pre-declared summaries, one row per (pooling, source, scope,
        metric): ``scope`` (``all_layers``, ``early``, ``middle``, ``late``), ``metric``
        (``auc``, ``gap``), ``value`` (mean over the scope's usable layers), ``ci_low``,
        ``ci_high`` (95% bootstrap), ``n_layers_used``, ``layers_used``.
        ``lexical``: the lexical-overlap control per source (``"all"`` first):
        ``paraphrase_mean``, ``nonparaphrase_mean`` (mean word Jaccard), ``gap``, ``auc``,
        ``n_pairs``.
    Summary (source "all"): per pooling ``<p>_auc_<scope>`` and ``<p>_gap_<scope>`` for each
    scope, each with ``_ci_low`` / ``_ci_high``; ``<p>_last_auc`` / ``<p>_last_gap`` (the last
    block's output, before the final norm), ``<p>_normed_auc`` / ``<p>_normed_gap`` (through
    it; with ``normed``), ``<p>_degenerate_layers``; ``lexical_auc`` and
    ``lexical_auc_<source>`` per source; ``flags`` (degenerate layers, skipped sources);
    counts, ``n_boot``, ``seed`` and the prompt format.
    """
    run = AnalysisRun("representation_consistency", lm, config)
    _check(pairs, config)
    sentences = list(dict.fromkeys(s for p in pairs for s in (p.a, p.b)))
    where = {s: i for i, s in enumerate(sentences)}
    a = [where[p.a] for p in pairs]
    b = [where[p.b] for p in pairs]
    labels = np.array([p.label for p in pairs])
    n_layers = lm.anatomy.n_layers
    layer_ids = np.arange(n_layers + 1 + int(config.normed))
    with run.stage("forward_s"):
        ids = sentence_ids(lm, sentences, config.chat)
        pooled = pooled_states(lm, ids, layers=layer_ids.tolist(), poolings=config.poolings,
                               batch_size=config.batch_size, desc=f"{lm.name}: representations")

    scopes, flags = _scopes(pairs, labels)
    resampler = bootstrap.Resampler(np.random.default_rng(config.seed), config.n_boot)
    # one resample of each source's pairs (within label), shared by the poolings
    weights = {source: resampler.stratified(labels[idx]) for source, idx in scopes.items()}

    overlap = np.array([lexical_overlap(p.a, p.b) for p in pairs])
    lexical = pd.DataFrame([{"source": source, **lexical_control(overlap[idx], labels[idx])}
                            for source, idx in scopes.items()])

    pair_tables, layer_tables, summary_tables = [], [], []
    summary: dict = {}
    n_points = len(layer_ids)
    for p in config.poolings:
        cos = pair_cosines(pooled[p], a, b)  # [n_pairs, n_points]
        pair_tables.append(pd.DataFrame({
            "pair": np.repeat(np.arange(len(pairs)), n_points), "pooling": p,
            "layer": np.tile(layer_ids, len(pairs)), "cosine": cos.ravel(),
            "label": np.repeat(labels, n_points),
            "source": np.repeat([q.source for q in pairs], n_points)}))
        pooled_degenerate = None
        for source, idx in scopes.items():
            metrics = layer_metrics(cos[idx], labels[idx], layer_ids, n_layers,
                                    config.degenerate_tol)
            layer_tables.append(metrics.assign(pooling=p, source=source))
            summary_tables.append(pd.DataFrame(_summaries(
                metrics, cos[idx], labels[idx].astype(bool), weights[source]))
                .assign(pooling=p, source=source))
            bad = metrics.loc[metrics["degenerate"], "layer"].tolist()
            if source == ALL:
                pooled_degenerate = bad
            if bad and (source == ALL or bad != pooled_degenerate):
                flags.append(_degenerate_flag(p, source, bad, n_layers, config.degenerate_tol))
            if source == ALL:
                rows = summary_tables[-1]
                for r in rows.itertuples():
                    name = f"{p}_{r.metric}_{r.scope}"
                    summary.update({name: r.value, f"{name}_ci_low": r.ci_low,
                                    f"{name}_ci_high": r.ci_high})
                last = metrics[metrics["layer"] == n_layers].iloc[0]
                summary.update({f"{p}_last_auc": last["auc"], f"{p}_last_gap": last["gap"]})
                if config.normed:
                    normed = metrics[metrics["normed"]].iloc[0]
                    summary.update({f"{p}_normed_auc": normed["auc"],
                                    f"{p}_normed_gap": normed["gap"]})
                summary[f"{p}_degenerate_layers"] = [int(l) for l in bad]
    layers = pd.concat(layer_tables, ignore_index=True)
    layers = layers[["pooling", "source"] + [c for c in layers.columns
                                            if c not in ("pooling", "source")]]
    summaries = pd.concat(summary_tables, ignore_index=True)
    summaries = summaries[["pooling", "source"] + [c for c in summaries.columns
                                                  if c not in ("pooling", "source")]]
    summary["lexical_auc"] = float(lexical["auc"].iloc[0])
    summary.update({f"lexical_auc_{r.source}": float(r.auc)
                    for r in lexical.iloc[1:].itertuples()})
    summary.update(n_pairs=len(pairs), n_paraphrase=int(labels.sum()),
                   n_nonparaphrase=int((labels == 0).sum()), n_sentences=len(sentences),
                   n_layers=n_layers, n_boot=config.n_boot, seed=config.seed,
                   prompt_format="chat" if config.chat else "raw", flags=flags)
    dataset = {"kind": "pairs", "size": len(pairs),
               "sources": sorted({q.source for q in pairs}),
               "fingerprint": fingerprint([[q.a, q.b, q.label, q.source] for q in pairs])}
    return run.result({"pairs": pd.concat(pair_tables, ignore_index=True), "layers": layers,
                       "summaries": summaries, "lexical": lexical},
                      summary, dataset, seed=config.seed)
