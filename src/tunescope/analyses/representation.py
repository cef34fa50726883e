"""representation_consistency (METHODS.md C2): do paraphrases lie closer together than
non-paraphrases in the model's residual stream, layer by layer?

Every distinct sentence of the pairs is run through the model once; one forward pass per batch
records every layer (layer 0 = the embedding output, the ``embed`` hook point; layer ``l + 1`` =
the ``resid_post`` output of block ``l``) and is pooled right away, two ways:

* ``"mean"``: the average over the sentence's real tokens except the first position (an
  attention sink with massive activations in most LMs; see :mod:`tunescope.engine.pooling`);
  ``"mean_all"`` keeps it;
* ``"last"``: the sentence's last token.

Per pair, layer and pooling the cosine similarity of the two pooled vectors is taken; per layer
and pooling the mean cosine of paraphrases (label 1) and non-paraphrases (label 0), their gap and
the ROC-AUC of cosine separating the two are reported.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.stats import rankdata

from tunescope.analyses.registry import register
from tunescope.data.types import ParaphrasePair
from tunescope.engine.batching import encode
from tunescope.engine.pooling import check_poolings, pooled_states
from tunescope.errors import TunescopeError
from tunescope.models.lm import LM
from tunescope.result import Result, fingerprint, provenance



@dataclass(frozen=True)
class RepresentationConfig:
    """Settings of :func:`representation_consistency`.

    Attributes:
        poolings: how a sentence's token vectors become one vector, any of
            :data:`tunescope.engine.pooling.POOLINGS` (``"mean"`` over its tokens but the
            first, ``"mean_all"`` over all, ``"last"``).
        batch_size: starting batch size (None: the device default; halves on out-of-memory).
        chat: wrap each sentence in the model's chat template as one user turn.
    """

    poolings: tuple[str, ...] = ("mean", "last")
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

    With ``chat`` the sentence is wrapped as one user turn by the chat template; a template
    that writes BOS itself would give it twice (template + tokenizer): the second is dropped.
    """
    if not chat:
        return encode(lm, sentences)
    if not lm.has_chat_template:
        raise TunescopeError(f"model '{lm.name}' has no chat template; use chat=False")
    ids = encode(lm, [lm.format_prompt(s, chat=True) for s in sentences])
    bos = lm.tokenizer.bos_token_id
    return [s[1:] if bos is not None and len(s) > 1 and s[0] == s[1] == bos else s for s in ids]


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


def layer_metrics(cosines: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """Per-layer separation of paraphrases from non-paraphrases.

    Args:
        cosines: [n_pairs, n_layers + 1] cosine similarities.
        labels: [n_pairs] of 0/1.

    Returns: one row per layer: ``layer``, ``relative_depth`` (layer / n_layers),
    ``paraphrase_mean``, ``nonparaphrase_mean``, ``gap`` (their difference), ``auc``,
    ``n_pairs``.
    """
    positive = np.asarray(labels).astype(bool)
    n = cosines.shape[1]
    para, non = cosines[positive].mean(0), cosines[~positive].mean(0)
    return pd.DataFrame({"layer": np.arange(n), "relative_depth": np.arange(n) / (n - 1),
                         "paraphrase_mean": para, "nonparaphrase_mean": non, "gap": para - non,
                         "auc": roc_auc(cosines, positive), "n_pairs": len(positive)})


def _check(pairs: Sequence[ParaphrasePair], config: RepresentationConfig) -> None:
    if not pairs:
        raise TunescopeError("no paraphrase pairs given")
    labels = {p.label for p in pairs}
    if len(labels) < 2:
        raise TunescopeError(f"all {len(pairs)} pairs have label {labels.pop()}: ROC-AUC (and the "
                             "gap) need both paraphrases (1) and non-paraphrases (0)")
    check_poolings(config.poolings)


@register("representation_consistency", RepresentationConfig, dataset="pairs")
def representation_consistency(lm: LM, pairs: Sequence[ParaphrasePair],
                               config: RepresentationConfig = RepresentationConfig()) -> Result:
    """Cosine similarity of paraphrase vs non-paraphrase representations, per layer (C2).

    Tables:
        ``pairs``: one row per (pair, pooling, layer): ``pair`` (index into ``pairs``),
        ``pooling``, ``layer``, ``cosine``, ``label``, ``source``.
        ``layers``: one row per (pooling, layer): ``pooling``, ``layer``, ``relative_depth``,
        ``paraphrase_mean``, ``nonparaphrase_mean``, ``gap``, ``auc``, ``n_pairs``.
    Summary: per pooling ``<pooling>_best_layer`` (highest AUC; the shallowest on ties) with its
    ``_best_auc`` and ``_best_gap``, and the last layer's ``_last_auc`` and ``_last_gap``; plus
    counts and the prompt format.
    """
    start = time.perf_counter()
    _check(pairs, config)
    sentences = list(dict.fromkeys(s for p in pairs for s in (p.a, p.b)))
    where = {s: i for i, s in enumerate(sentences)}
    a = [where[p.a] for p in pairs]
    b = [where[p.b] for p in pairs]
    labels = np.array([p.label for p in pairs])
    ids = sentence_ids(lm, sentences, config.chat)
    pooled = pooled_states(lm, ids, poolings=config.poolings, batch_size=config.batch_size,
                           desc=f"{lm.name}: representations")
    forward_s = time.perf_counter() - start

    pair_tables, layer_tables = [], []
    summary = {}
    n_layers = lm.anatomy.n_layers
    for p in config.poolings:
        cos = pair_cosines(pooled[p], a, b)  # [n_pairs, n_layers + 1]
        pair_tables.append(pd.DataFrame({
            "pair": np.repeat(np.arange(len(pairs)), n_layers + 1), "pooling": p,
            "layer": np.tile(np.arange(n_layers + 1), len(pairs)), "cosine": cos.ravel(),
            "label": np.repeat(labels, n_layers + 1),
            "source": np.repeat([q.source for q in pairs], n_layers + 1)}))
        metrics = layer_metrics(cos, labels)
        layer_tables.append(metrics.assign(pooling=p))
        best = metrics.loc[metrics["auc"].idxmax()]
        last = metrics.iloc[-1]
        summary.update({f"{p}_best_layer": int(best["layer"]), f"{p}_best_auc": best["auc"],
                        f"{p}_best_gap": best["gap"], f"{p}_last_auc": last["auc"],
                        f"{p}_last_gap": last["gap"]})
    layers = pd.concat(layer_tables, ignore_index=True)
    layers = layers[["pooling"] + [c for c in layers.columns if c != "pooling"]]
    summary.update(n_pairs=len(pairs), n_paraphrase=int(labels.sum()),
                   n_nonparaphrase=int((labels == 0).sum()), n_sentences=len(sentences),
                   n_layers=n_layers, prompt_format="chat" if config.chat else "raw")
    dataset = {"kind": "pairs", "size": len(pairs),
               "sources": sorted({q.source for q in pairs}),
               "fingerprint": fingerprint([[q.a, q.b, q.label, q.source] for q in pairs])}
    return Result("representation_consistency",
                  {"pairs": pd.concat(pair_tables, ignore_index=True), "layers": layers},
                  summary, provenance(lm, config, dataset, timings={
                      "forward_s": forward_s, "analysis_s": time.perf_counter() - start}))
