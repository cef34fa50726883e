"""ffn_concepts (docs/methods.md#w3, after Wu et al. 2024): feed-forward layers read as concepts.

Per layer, the MLP down-projection W is read as [neurons, d_model] (row i: what neuron i writes
into the residual stream) through :meth:`~tunescope.models.anatomy.Anatomy.mlp_down_weight`,
which folds in the gain of any elementwise norm between it and the residual stream (Gemma 2/3's
post-feed-forward norm; the per-token RMS scaling of that norm stays out). Its rows are
centred (the mean over neurons subtracted) and decomposed by one SVD, ``W_c = U S Vh``: the
principal components are the rows of ``Vh`` (unit vectors in the residual basis) and each
component's explained-variance share is ``S^2 / sum(S^2)``. Component c is described by the
vocabulary words whose unembedding vectors (mean over the word's tokens, :func:`word_vectors`)
have the largest |cos| with c; the signed cosine is kept. A labeller
(:mod:`tunescope.labels.concept_labels`) may then name each of the top ``rank`` components
with a user task and a linguistic level.

Singular vectors are defined up to sign; each component is flipped so that its largest-magnitude
coordinate is positive, which makes the signs of the cosines reproducible.

Beyond the study, :func:`tunescope.compare.ffn_concepts.layer_principal_angles` compares the component subspaces of two models
of the same architecture (principal angles, in degrees).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from tunescope.analyses.helpers.word_vectors import unit_rows, word_vectors
from tunescope.analyses.registry import register
from tunescope.analyses.skeleton import AnalysisRun
from tunescope.common.progress import progress
from tunescope.errors import TunescopeError
from tunescope.models.lm import LM
from tunescope.result import Result, fingerprint


@dataclass(frozen=True)
class FFNConceptsConfig:
    """W3 settings: ``rank`` components described (and labelled) per layer; ``top_words`` words
    per component; ``layers``: None for all; ``labeller``: ``"offline"`` (the rule-based
    :class:`~tunescope.labels.offline_labeller.OfflineLabeller`) or ``"none"`` (an LLM labeller
    is passed to :func:`ffn_concepts` as an object); ``runs``: labelling runs per component
    (the study's 5; the offline labeller gives the same label in every run); ``keep_vectors``:
    the first n components of each layer kept as vectors (table ``vectors``), so that a
    comparison of a base with its tuned variant can measure the principal angles between their
    subspaces without the weights (0: none; they take n x d_model floats per layer)."""

    rank: int = 300
    top_words: int = 50
    layers: tuple[int, ...] | None = None
    labeller: str = "offline"
    runs: int = 5
    keep_vectors: int = 0


def layer_components(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Principal components of a [neurons, d_model] weight: rows centred, one float32 SVD.

    Returns ``(components [k, d_model], explained [k])`` with k = min(neurons, d_model):
    unit rows of Vh (largest-magnitude coordinate made positive) and the explained-variance
    shares S^2 / sum(S^2), in decreasing order (they sum to 1)."""
    w = weight.detach().float().cpu()
    w = w - w.mean(dim=0, keepdim=True)
    _, s, vh = torch.linalg.svd(w, full_matrices=False)
    peak = vh.gather(1, vh.abs().argmax(dim=1, keepdim=True))
    vh = vh * torch.where(peak < 0, -1.0, 1.0)
    var = s.double().pow(2)
    total = var.sum()
    explained = (var / total if total > 0 else torch.zeros_like(var)).float()
    return vh, explained


@functools.lru_cache(maxsize=1)
def bf16_matmul_is_faster() -> bool:
    """Whether this machine multiplies bfloat16 matrices on the CPU at least 1.5x faster than
    float32 (true where the CPU has bfloat16 instructions; elsewhere bfloat16 is emulated and
    slow). Timed once per process on [300, 640] x [640, 4096] products (a few ms)."""
    gen = torch.Generator().manual_seed(0)               # leaves the global generator alone
    a, b = torch.randn(300, 640, generator=gen), torch.randn(4096, 640, generator=gen)
    times = []
    for x, y in ((a, b), (a.bfloat16(), b.bfloat16())):
        x @ y.T
        start = time.perf_counter()
        for _ in range(3):
            x @ y.T
        times.append(time.perf_counter() - start)
    return times[1] * 1.5 <= times[0]


class CosineTopWords:
    """The ``k`` words of largest |cos| with each component, against fixed word vectors,
    exact in float32.

    ``word_unit``: [n_words, d] unit rows. The plain way (``screen=False``) is one float32
    product [r, d] x [d, n_words] and one ``torch.topk`` per call. With ``screen`` (default:
    where :func:`bf16_matmul_is_faster`), a bfloat16 product screens the words first: per
    component its m = ``candidates`` best by the coarse |cos|, the last of which has coarse
    value t, get exact float32 cosines (gathered dot products). The m best are found among the
    words of the m groups with the largest coarse peaks, the words split into groups of
    ``block`` (word j in group j mod g, g = n_words / ``block`` rounded up, so that the peaks
    are elementwise maxima of ``block`` contiguous slices): a top-k over g values, then one
    over m x ``block``. A word outside the chosen groups is at most the m-th largest peak,
    which is at most t, because the m chosen peaks are candidates themselves. So any word
    that is no candidate has coarse |cos| <= t, and its true |cos| is at most t / (1 - 2^-8)
    (rounding of the bfloat16 result) + |dc| |w| + |c| |dw| + |dc| |dw| (Cauchy-Schwarz on
    the inputs' rounding errors dc, dw, measured here) + d 2^-23 (float32 accumulation). A
    component whose k-th exact |cos| exceeds that bound has its top k proved. The others
    (counted in ``recomputed``) are screened again from the same coarse row with 8x as many
    candidates, as long as they are at most a quarter of the words, and computed the plain way
    where even that proves nothing. The answer equals the plain way's up to float32 rounding
    (~1e-7), which may swap words whose |cos| agree to that precision.

    Large intermediate matrices are written into buffers kept between calls, so the layers of
    a model do not pay for fresh memory (tens of MB) every time."""

    def __init__(self, word_unit: torch.Tensor, screen: bool | None = None,
                 candidates: int = 96, chunk: int = 16, block: int = 16):
        self.exact = word_unit.detach().float().cpu().contiguous()
        self.candidates, self.chunk, self.block = candidates, chunk, block
        self.coarse = None
        if screen if screen is not None else bf16_matmul_is_faster():
            n, d = self.exact.shape
            self.coarse = torch.zeros(n + -n % block, d, dtype=torch.bfloat16)  # [n rounded up, d]
            self.word_norm = self.word_error = 0.0
            for s in range(0, n, 4096):            # in slices that stay in the CPU's cache
                exact, coarse = self.exact[s:s + 4096], self.coarse[s:min(s + 4096, n)]
                coarse.copy_(exact)
                self.word_norm = max(self.word_norm, float(exact.norm(dim=1).max()))
                self.word_error = max(self.word_error,
                                      float((exact - coarse.float()).norm(dim=1).max()))
        self.recomputed = 0
        self._buffers: dict[str, torch.Tensor] = {}

    def _buffer(self, name: str, shape: tuple[int, ...], dtype=torch.float32) -> torch.Tensor:
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self._buffers[name] = torch.empty(shape, dtype=dtype)
        return buf

    def __call__(self, components: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``components`` [r, d] -> ``(indices [r, k'], signed cosines [r, k'])`` by decreasing
        |cos|, k' = min(k, n_words)."""
        # Row-major: LAPACK hands back Vh column-major, and a column-major left operand
        # takes twice as long in the bfloat16 product.
        comp = unit_rows(components.detach().float().cpu()).contiguous()
        n = self.exact.shape[0]
        k = min(k, n)
        m = max(self.candidates, 2 * k)
        if self.coarse is None or 4 * m > n:
            return self._plain(comp, k)
        r, d = comp.shape
        comp_coarse = comp.bfloat16()
        coarse = self._buffer("coarse", (r, self.coarse.shape[0]), torch.bfloat16)
        torch.matmul(comp_coarse, self.coarse.T, out=coarse).abs_()              # [r, padded]
        coarse[:, n:] = -1.0                                   # padding never outranks a word
        comp_error = (comp - comp_coarse.float()).norm(dim=1)                     # [r]
        # what rounding may add to a coarse |cos| (see the class docstring)
        slack = (comp_error * self.word_norm + comp.norm(dim=1) * self.word_error
                 + comp_error * self.word_error + d * 2.0 ** -23)                 # [r]
        idx, val = torch.empty(r, k, dtype=torch.long), torch.empty(r, k)
        got_idx, got_val, proved = self._screened(comp, coarse, slack, k, m)
        idx[proved], val[proved] = got_idx[proved], got_val[proved]
        todo = (~proved).nonzero().flatten()
        self.recomputed += len(todo)
        m *= 8                                 # the unproved: again, with 8x the candidates
        while len(todo) and 4 * m <= n:
            got_idx, got_val, proved = self._screened(comp[todo], coarse[todo], slack[todo], k, m)
            idx[todo[proved]], val[todo[proved]] = got_idx[proved], got_val[proved]
            todo, m = todo[~proved], 8 * m
        if len(todo):
            idx[todo], val[todo] = self._plain(comp[todo], k)
        return idx, val

    def _screened(self, comp: torch.Tensor, coarse: torch.Tensor, slack: torch.Tensor, k: int,
                  m: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The top ``k`` words of each of the components ``comp`` [r, d] among the ``m`` best
        by their coarse |cos| rows [r, padded]: (indices [r, k], cosines [r, k], proved [r])."""
        r, d = comp.shape
        padded = coarse.shape[1]
        block = self.block if padded >= 4 * m * self.block else 1
        groups = padded // block
        peaks = coarse.view(r, block, groups).amax(dim=1)                        # [r, groups]
        words = (peaks.topk(m, dim=1).indices[:, None, :]
                 + groups * torch.arange(block)[:, None]).view(r, m * block)      # [r, m * block]
        best_coarse = coarse.gather(1, words).topk(m, dim=1)
        top_idx = words.gather(1, best_coarse.indices)                            # [r, m]
        bound = best_coarse.values[:, -1].float() / (1 - 2.0 ** -8) + slack       # [r]
        cos = torch.empty(r, m)
        chunk = max(1, self.chunk * self.candidates // m)
        for s in range(0, r, chunk):
            e = min(s + chunk, r)
            rows = self._buffer("rows", (max(chunk * m, self.chunk * self.candidates) * d,))
            rows = rows[:(e - s) * m * d].view((e - s) * m, d)
            torch.index_select(self.exact, 0, top_idx[s:e].reshape(-1), out=rows)
            cos[s:e] = torch.bmm(rows.view(e - s, m, d), comp[s:e, :, None])[..., 0]
        best = cos.abs().topk(k, dim=1)
        return (top_idx.gather(1, best.indices), cos.gather(1, best.indices),
                best.values[:, -1] > bound)

    def _plain(self, comp: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (comp.shape[0], self.exact.shape[0])
        cos, size = self._buffer("cos", shape), self._buffer("abs", shape)
        torch.matmul(comp, self.exact.T, out=cos)                                 # [r, n]
        idx = torch.abs(cos, out=size).topk(k, dim=1).indices
        return idx, cos.gather(1, idx)


def component_top_words(components: torch.Tensor, word_unit: torch.Tensor, k: int
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """For each component [r, d] the ``k`` words (``word_unit``: [n_words, d], unit rows) of
    largest |cos|: ``(indices [r, k], signed cosines [r, k])``, by decreasing |cos|
    (:class:`CosineTopWords`; build one to reuse across layers)."""
    return CosineTopWords(word_unit)(components, k)


def check_layers(layers: Sequence[int] | None, n_layers: int) -> list[int]:
    out = list(range(n_layers)) if layers is None else [int(layer) for layer in layers]
    if any(not 0 <= layer < n_layers for layer in out):
        raise TunescopeError(f"layers must lie in 0..{n_layers - 1}, got {out}")
    return out


def _make_labeller(name: str):
    if name == "none":
        return None
    if name == "offline":
        from tunescope.labels.offline_labeller import OfflineLabeller
        return OfflineLabeller()
    raise TunescopeError(f"unknown labeller '{name}'; choose 'offline' or 'none' "
                         "(pass an LLMLabeller object for an LLM)")


@register("ffn_concepts", FFNConceptsConfig, dataset="vocabulary")
def ffn_concepts(lm: LM, words: Sequence[str], config: FFNConceptsConfig = FFNConceptsConfig(),
                 labeller=None) -> Result:
    """Feed-forward layers as concepts: principal components of the down-projections (W3).

    ``words``: the vocabulary that describes components (e.g. frequent English words).
    ``labeller``: an object with ``label(components, runs) -> list[list[ConceptLabel]]``
    (e.g. an :class:`~tunescope.labels.concept_labels.LLMLabeller`); overrides
    ``config.labeller``.

    Tables: ``components`` (layer, component, explained_variance, cumulative; every component),
    ``top_words`` (layer, component, rank, word, cosine; the first ``config.rank`` components),
    with a labeller ``labels`` (layer, component, run, category, level, description), and with
    ``config.keep_vectors`` ``vectors`` (layer, component, vector: float32 [d_model]).
    """
    run = AnalysisRun("ffn_concepts", lm, config)
    words = list(dict.fromkeys(words))
    if not words:
        raise TunescopeError("ffn_concepts needs a non-empty vocabulary")
    if config.rank < 1 or config.top_words < 1 or config.runs < 1:
        raise TunescopeError("rank, top_words and runs must be positive")
    if config.keep_vectors < 0:
        raise TunescopeError("keep_vectors must be 0 or positive")
    layers = check_layers(config.layers, lm.anatomy.n_layers)
    if labeller is None:
        labeller = _make_labeller(config.labeller)
    decompositions, kept = [], []
    with torch.no_grad(), progress(2 * len(layers), f"{lm.name}: ffn concepts") as bar:
        for layer in layers:
            comps, explained = layer_components(lm.anatomy.mlp_down_weight(layer))
            decompositions.append((comps[:min(config.rank, comps.shape[0])], explained))
            kept.append(comps[:config.keep_vectors].numpy())
            bar.advance()
        top_words = CosineTopWords(unit_rows(word_vectors(lm, words, "unembed")))
        vocab = np.array(words, dtype=object)
        idx_parts, cos_parts = [], []
        for layer, (comps, explained) in zip(layers, decompositions):
            idx, cos = top_words(comps, config.top_words)
            idx_parts.append(idx.numpy())
            cos_parts.append(cos.numpy())
            bar.advance()
    evs = [explained.double().numpy() for _, explained in decompositions]
    components = pd.DataFrame({
        "layer": np.repeat(layers, [len(ev) for ev in evs]),
        "component": np.concatenate([np.arange(len(ev)) for ev in evs]),
        "explained_variance": np.concatenate(evs),
        "cumulative": np.concatenate([np.cumsum(ev) for ev in evs])})
    ranks = [idx.shape for idx in idx_parts]                                 # (r, k) per layer
    all_idx = np.concatenate([idx.reshape(-1) for idx in idx_parts])
    top = pd.DataFrame({
        "layer": np.repeat(layers, [r * k for r, k in ranks]),
        "component": np.concatenate([np.repeat(np.arange(r), k) for r, k in ranks]),
        "rank": np.concatenate([np.tile(np.arange(1, k + 1), r) for r, k in ranks]),
        "word": vocab[all_idx],
        "cosine": np.concatenate([cos.reshape(-1) for cos in cos_parts]).astype(np.float64)})
    keys = [(layer, c) for layer, (r, _) in zip(layers, ranks) for c in range(r)]
    tables = {"components": components, "top_words": top}
    if config.keep_vectors:
        tables["vectors"] = pd.DataFrame({
            "layer": np.repeat(layers, [len(v) for v in kept]),
            "component": np.concatenate([np.arange(len(v)) for v in kept]),
            "vector": [row.astype(np.float32) for v in kept for row in v]})
    top10 = [float(ev[:10].sum()) for ev in evs]
    summary = {"n_words": len(words), "n_layers": len(layers), "layers": layers,
               "components_described": len(keys), "top10_variance_by_layer": top10,
               "mean_top10_variance": float(np.mean(top10))}
    if labeller is not None:
        labels = labeller.label([list(vocab[row]) for idx in idx_parts for row in idx],
                                config.runs)
        runs = [len(per_run) for per_run in labels]
        flat = [lab for per_run in labels for lab in per_run]
        table = pd.DataFrame({
            "layer": np.repeat([layer for layer, _ in keys], runs).astype(np.int64),
            "component": np.repeat([c for _, c in keys], runs).astype(np.int64),
            "run": np.concatenate([np.arange(n) for n in runs] or [[]]).astype(np.int64),
            "category": [lab.category for lab in flat], "level": [lab.level for lab in flat],
            "description": [lab.description for lab in flat]})
        tables["labels"] = table
        summary["labeller"] = getattr(labeller, "name", type(labeller).__name__)
        summary["category_shares"] = table["category"].value_counts(normalize=True).to_dict()
        summary["level_shares"] = table["level"].value_counts(normalize=True).to_dict()
    dataset = {"kind": "vocabulary", "size": len(words), "fingerprint": fingerprint(words)}
    return run.result(tables, summary, dataset)
