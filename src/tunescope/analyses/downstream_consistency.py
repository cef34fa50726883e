"""downstream_consistency (docs/methods.md#c3): does a perturbation that keeps the meaning of a task
input keep the model's prediction?

Three ways to read a prediction off a frozen model (``modes``):

* ``"probe"``: a logistic-regression probe on pooled residual-stream representations of one
  layer, trained on the CLEAN inputs of a stratified training split only, then applied to the
  held-out test inputs and their perturbations.
* ``"zero_shot"``: each label word scored as the continuation of the task's prompt; the
  prediction is the label whose word has the highest summed log-probability (nats). Raw,
  uncalibrated: a base model often gives one label to every input.
* ``"zero_shot_calibrated"``: the same scores with content-free calibration (Zhao et al. 2021,
  "Calibrate Before Use"). Each content-free input (``content_free_inputs``: ``"N/A"``,
  ``"[MASK]"``, ``""``) goes through the same prompt template; with ``p(y|x)`` the label
  probabilities renormalised over the labels, ``p_cf(y)`` is their mean over the content-free
  inputs, and the calibrated score of label ``y`` is ``log p(y|x) - log p_cf(y)``; the
  prediction is its argmax. Both zero-shot modes share one scoring pass.

Metrics per (mode, perturbation kind): accuracy on the originals and on the perturbed inputs;
consistency, the share of (original, perturbed) pairs with the same predicted label; and
Cohen's kappa between the original and the perturbed predictions over those pairs, i.e.
consistency corrected for the agreement two independent predictors with the same label
frequencies would reach by chance. A constant predictor reaches consistency 1 (or the share of
perturbed inputs it gives its one label) without any robustness; its kappa is 0, or undefined
(NaN) when both prediction lists are one and the same label. A mode whose predictions on the
evaluated ORIGINAL inputs are all one label is flagged as a constant predictor
(``summary["flags"]``). The rule is strict (every original, no threshold): kappa already
discounts near-constant predictors, and a threshold would flag a good model on a task whose
labels are skewed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tunescope.analyses.registry import register
from tunescope.analyses.skeleton import AnalysisRun
from tunescope.data.types import Task, TaskExample
from tunescope.engine.batching import encode
from tunescope.engine.pooling import check_poolings, pooled_states
from tunescope.engine.scoring import score_continuations
from tunescope.errors import TunescopeError
from tunescope.models.lm import LM
from tunescope.result import Result, fingerprint

MODES = ("probe", "zero_shot", "zero_shot_calibrated")
ORIGINAL = "original"
"""The ``kind`` of an unperturbed input in the predictions table."""
ALL = "all"
"""The ``kind`` of the metrics row that pools every perturbation kind."""


@dataclass(frozen=True)
class DownstreamConfig:
    """Settings of :func:`downstream_consistency`.

    Attributes:
        modes: which predictions to evaluate, any of :data:`MODES` (module docstring):
            ``"probe"``, ``"zero_shot"`` (raw label-word scores) and ``"zero_shot_calibrated"``
            (the same scores, content-free calibrated).
        content_free_inputs: the content-free texts put through the prompt template to
            estimate the zero-shot label bias (``"zero_shot_calibrated"`` only).
        layer: the probe's block (its ``resid_post`` output); None = the last block, negative
            values count from the end.
        pooling: one of :data:`tunescope.engine.pooling.POOLINGS`: ``"mean"`` over the
            input's tokens but a special first token (BOS; an attention sink of outsized norm
            in real models), ``"mean_all"`` over all of them, or ``"last"`` (the input's last
            token).
        train_fraction: share of each label's examples in the probe's training split.
        seed: seed of the split and of the logistic regression.
        C: inverse L2 regularisation strength of the logistic regression.
        chat: wrap zero-shot prompts in the model's chat template (zero-shot only).
        batch_size: starting batch size (None: the device default; halves on out-of-memory).
    """

    modes: tuple[str, ...] = ("probe", "zero_shot", "zero_shot_calibrated")
    content_free_inputs: tuple[str, ...] = ("N/A", "[MASK]", "")
    layer: int | None = None
    pooling: str = "mean"
    train_fraction: float = 0.5
    seed: int = 0
    C: float = 1.0
    chat: bool = False
    batch_size: int | None = None


def resolve_layer(lm: LM, layer: int | None) -> int:
    """The block index ``layer`` names (None = last; negative counts from the end)."""
    n = lm.anatomy.n_layers
    if layer is None:
        return n - 1
    if not -n <= layer < n:
        raise TunescopeError(f"layer {layer} is out of range for model '{lm.name}' with {n} "
                             f"blocks (use 0..{n - 1} or -{n}..-1)")
    return layer % n


def pooled_representations(lm: LM, texts: Sequence[str], layer: int, pooling: str = "mean",
                           batch_size: int | None = None, desc: str | None = None) -> np.ndarray:
    """Pooled output of block ``layer`` for each text: float32 array [len(texts), d_model].

    One batched forward pass per batch, stopped after block ``layer``; poolings as in
    :mod:`tunescope.engine.pooling`.
    """
    pooled = pooled_states(lm, encode(lm, texts), layers=[layer + 1], poolings=[pooling],
                           batch_size=batch_size, desc=desc or f"layer {layer} representations")
    return pooled[pooling][:, 0].numpy()


def stratified_split(examples: Sequence[TaskExample], train_fraction: float,
                     seed: int) -> tuple[list[int], list[int]]:
    """Indices (train, test) of a split stratified by label, deterministic for ``seed``.

    Each label with ``n`` examples puts ``round(train_fraction * n)`` of them (at least 1, at
    most ``n - 1``) into training. Both lists are sorted.
    """
    if not 0 < train_fraction < 1:
        raise TunescopeError(f"train_fraction must lie strictly between 0 and 1, "
                             f"got {train_fraction}")
    by_label: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        by_label.setdefault(ex.label, []).append(i)
    if len(by_label) < 2:
        raise TunescopeError(f"the probe needs examples of two or more labels, "
                             f"found only {sorted(by_label)}")
    few = [f"{label!r} ({len(idx)})" for label, idx in sorted(by_label.items()) if len(idx) < 2]
    if few:
        raise TunescopeError(f"the probe's train/test split needs at least 2 examples of each "
                             f"label; too few: {', '.join(few)}")
    rng = np.random.default_rng(seed)
    train: list[int] = []
    for label in sorted(by_label):
        idx = rng.permutation(by_label[label])
        k = min(max(round(train_fraction * len(idx)), 1), len(idx) - 1)
        train += idx[:k].tolist()
    chosen = set(train)
    return sorted(train), [i for i in range(len(examples)) if i not in chosen]


def _inputs(examples: Sequence[TaskExample]) -> list[tuple[TaskExample, str, str]]:
    """(example, kind, text) for each original (kind ``"original"``) and each perturbation."""
    return [item for ex in examples
            for item in [(ex, ORIGINAL, ex.text), *((ex, k, t) for k, t in ex.perturbations)]]


def _probe(lm: LM, task: Task, config: DownstreamConfig, layer: int) -> tuple[list[dict], dict]:
    """Prediction rows of the probe on the test inputs, and the probe's summary entries."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    examples = task.examples
    train, test = stratified_split(examples, config.train_fraction, config.seed)
    train_texts = [examples[i].text for i in train]
    evaluated = _inputs([examples[i] for i in test])
    unique = list(dict.fromkeys(train_texts + [t for _, _, t in evaluated]))
    feats = pooled_representations(lm, unique, layer, config.pooling, config.batch_size,
                                   desc=f"{lm.name}: layer {layer} representations")
    row_of = {t: i for i, t in enumerate(unique)}
    x_train = feats[[row_of[t] for t in train_texts]]
    scaler = StandardScaler().fit(x_train)
    clf = LogisticRegression(C=config.C, max_iter=2000, random_state=config.seed)
    clf.fit(scaler.transform(x_train), [examples[i].label for i in train])
    predicted = clf.predict(scaler.transform(feats[[row_of[t] for _, _, t in evaluated]]))
    rows = [{"mode": "probe", "example_id": ex.id, "kind": kind, "text": text, "gold": ex.label,
             "predicted": str(p)} for (ex, kind, text), p in zip(evaluated, predicted)]
    return rows, {"probe_layer": layer, "probe_n_train": len(train), "probe_n_test": len(test)}


def _zero_shot(lm: LM, task: Task, config: DownstreamConfig,
               modes: Sequence[str]) -> tuple[list[dict], pd.DataFrame | None, dict]:
    """Prediction rows of the zero-shot ``modes`` (``"zero_shot"``, ``"zero_shot_calibrated"``)
    on every input, the content-free calibration table (None without the calibrated mode) and
    summary entries.

    The prompt is ``task.prompt_template`` filled with the text (chat-wrapped when
    ``config.chat``); each label's word is scored as written in ``task.label_words`` directly
    after the prompt (``sep=""``; e.g. `` positive`` with its leading space). In chat mode the
    word's leading whitespace is dropped, since the assistant's answer starts a fresh turn.
    Every row holds the raw summed log-probabilities ``logprob_<label>`` (nats); calibrated rows
    also ``calibrated_<label>`` = ``log p(label|x) - log p_cf(label)`` (module docstring).
    """
    words = dict(task.label_words)
    missing = [label for label in task.labels if label not in words]
    if missing:
        raise TunescopeError(f"task '{task.name}' has no label word for {', '.join(missing)}")
    candidates = [words[label].lstrip() if config.chat else words[label] for label in task.labels]
    calibrate = "zero_shot_calibrated" in modes

    def prompt(text: str) -> str:
        return lm.format_prompt(task.prompt_template.format(text=text), chat=config.chat)

    evaluated = _inputs(task.examples)
    content_free = list(config.content_free_inputs) if calibrate else []
    prompts = list(dict.fromkeys([prompt(t) for _, _, t in evaluated]
                                 + [prompt(t) for t in content_free]))
    scores = score_continuations(lm, prompts, [candidates] * len(prompts), sep="",
                                 batch_size=config.batch_size,
                                 desc=f"{lm.name}: zero-shot label scores")
    by_prompt = {p: np.asarray(s.sum_logprob, dtype=np.float64) for p, s in zip(prompts, scores)}
    table, summary, log_p_cf = None, {}, None
    if calibrate:
        cf = np.stack([by_prompt[prompt(t)] for t in content_free])  # [n_cf, n_labels]
        probs = np.exp(label_log_probs(cf))
        log_p_cf = np.log(probs.mean(0))
        table = pd.DataFrame({"input": content_free,
                              **{f"logprob_{y}": cf[:, j] for j, y in enumerate(task.labels)},
                              **{f"probability_{y}": probs[:, j]
                                 for j, y in enumerate(task.labels)}})
        summary = {"zero_shot_calibrated_content_free_inputs": content_free,
                   **{f"zero_shot_calibrated_p_cf_{y}": float(np.exp(v))
                      for y, v in zip(task.labels, log_p_cf)}}
    rows = []
    for mode in modes:
        for ex, kind, text in evaluated:
            s = by_prompt[prompt(text)]
            row = {"mode": mode, "example_id": ex.id, "kind": kind, "text": text,
                   "gold": ex.label, **{f"logprob_{y}": float(v) for y, v in zip(task.labels, s)}}
            if mode == "zero_shot_calibrated":
                calibrated = label_log_probs(s) - log_p_cf
                row.update({f"calibrated_{y}": float(v) for y, v in zip(task.labels, calibrated)})
                s = calibrated
            row["predicted"] = task.labels[int(np.argmax(s))]
            rows.append(row)
    return rows, table, summary


def label_log_probs(scores: np.ndarray) -> np.ndarray:
    """Log-probabilities renormalised over the labels: ``scores`` [..., n_labels] (summed
    log-probabilities of the label words) minus their log-sum-exp over the last axis."""
    scores = np.asarray(scores, dtype=np.float64)
    top = scores.max(-1, keepdims=True)
    return scores - (top + np.log(np.exp(scores - top).sum(-1, keepdims=True)))


def cohen_kappa(first: Sequence, second: Sequence) -> float:
    """Cohen's kappa between two equally long label sequences: ``(p_o - p_e) / (1 - p_e)``
    with ``p_o`` the share of positions where they agree and ``p_e`` the sum over labels of
    the product of the label's shares in each sequence. NaN when ``p_e`` is 1 (both sequences
    one and the same label: 0/0) or the sequences are empty."""
    a, b = np.asarray(first, dtype=object), np.asarray(second, dtype=object)
    if len(a) != len(b):
        raise ValueError(f"kappa of sequences of different lengths ({len(a)}, {len(b)})")
    if not len(a):
        return float("nan")
    p_o = float(np.mean(a == b))
    p_e = sum(float(np.mean(a == c)) * float(np.mean(b == c)) for c in set(a) | set(b))
    return float("nan") if 1.0 - p_e <= 1e-12 else (p_o - p_e) / (1.0 - p_e)


def constant_predictors(predictions: pd.DataFrame) -> dict[str, str]:
    """``{mode: label}`` for every mode whose predictions on the original inputs (kind
    ``"original"``) are all one label: a constant predictor (module docstring)."""
    originals = predictions[predictions["kind"] == ORIGINAL]
    out = {}
    for mode, group in originals.groupby("mode", sort=False):
        labels = group["predicted"].unique()
        if len(labels) == 1:
            out[str(mode)] = str(labels[0])
    return out


def consistency_metrics(predictions: pd.DataFrame) -> pd.DataFrame:
    """Accuracy, consistency and kappa per mode and perturbation kind, plus an ``"all"`` row
    per mode.

    ``predictions`` needs columns ``mode``, ``example_id``, ``kind`` (``"original"`` or a
    perturbation kind), ``gold`` and ``predicted``, and an original row for every example that
    has perturbed rows. For each (mode, kind), over the pairs (original, perturbed) of that
    kind: ``accuracy_original`` is the accuracy on the originals of the examples involved (each
    counted once), ``accuracy_perturbed`` the accuracy on the perturbed inputs, ``consistency``
    the share of pairs whose two predictions agree, ``kappa`` Cohen's kappa between the pairs'
    original and perturbed predictions (:func:`cohen_kappa`; NaN when both are one and the same
    label), ``n_pairs`` the number of pairs.
    """
    rows = []
    for mode, group in predictions.groupby("mode", sort=False):
        originals = group[group["kind"] == ORIGINAL].set_index("example_id")
        perturbed = group[group["kind"] != ORIGINAL]
        unmatched = set(perturbed["example_id"]) - set(originals.index)
        if unmatched:
            raise ValueError(f"{mode}: perturbed rows without an original: {sorted(unmatched)}")
        pairs = perturbed.join(originals["predicted"].rename("predicted_original"),
                               on="example_id")
        for kind, sub in [*pairs.groupby("kind", sort=False), (ALL, pairs)]:
            orig = originals.loc[sub["example_id"].unique()]
            rows.append({
                "mode": mode, "kind": kind,
                "accuracy_original": float((orig["predicted"] == orig["gold"]).mean()),
                "accuracy_perturbed": float((sub["predicted"] == sub["gold"]).mean()),
                "consistency": float((sub["predicted"] == sub["predicted_original"]).mean()),
                "kappa": cohen_kappa(sub["predicted_original"], sub["predicted"]),
                "n_pairs": len(sub)})
    return pd.DataFrame(rows, columns=["mode", "kind", "accuracy_original",
                                       "accuracy_perturbed", "consistency", "kappa", "n_pairs"])


def constant_flag(mode: str, label: str, metrics: pd.DataFrame, n_originals: int) -> str:
    """The one-line warning of a constant predictor (``summary["flags"]``)."""
    m = metrics[(metrics["mode"] == mode) & (metrics["kind"] == ALL)].iloc[0]
    return (f"{mode} is a constant predictor: it gives every one of the {n_originals} original "
            f"inputs the label {label!r} (accuracy {m.accuracy_original:.3g}); its consistency "
            f"({m.consistency:.3g}) reflects that, not robustness (kappa {m.kappa:.3g})")


def _check(task: Task, config: DownstreamConfig) -> None:
    """Clear errors for a task or config that the analysis cannot run on."""
    unknown = [m for m in config.modes if m not in MODES]
    if unknown or not config.modes:
        raise TunescopeError(f"unknown mode(s) {unknown or '(none given)'}; "
                             f"expected any of {', '.join(MODES)}")
    if "zero_shot_calibrated" in config.modes and not config.content_free_inputs:
        raise TunescopeError("mode 'zero_shot_calibrated' needs at least one content-free "
                             "input (content_free_inputs)")
    check_poolings([config.pooling])
    if not task.examples:
        raise TunescopeError(f"task '{task.name}' has no examples")
    kinds = {k for ex in task.examples for k, _ in ex.perturbations}
    if not kinds:
        raise TunescopeError(f"task '{task.name}' has no perturbations: consistency needs "
                             "(original, perturbed) pairs")
    if kinds & {ORIGINAL, ALL}:
        raise TunescopeError(f"perturbation kinds {ORIGINAL!r} and {ALL!r} are reserved")


@register("downstream_consistency", DownstreamConfig, dataset="task")
def downstream_consistency(lm: LM, task: Task,
                           config: DownstreamConfig = DownstreamConfig()) -> Result:
    """Consistency of probe and zero-shot predictions under meaning-preserving perturbations.

    Tables: ``predictions`` (one row per mode and evaluated input: ``mode``, ``example_id``,
    ``kind``, ``text``, ``gold``, ``predicted``, zero-shot ``logprob_<label>``, calibrated
    ``calibrated_<label>``), ``metrics`` (:func:`consistency_metrics`) and, with the calibrated
    mode, ``calibration`` (per content-free ``input``: ``logprob_<label>`` and the renormalised
    ``probability_<label>``). Summary: ``n_examples``; per mode ``<mode>_consistency``,
    ``<mode>_kappa`` (None where NaN), ``<mode>_accuracy_original``,
    ``<mode>_accuracy_perturbed`` (the ``"all"`` rows); the probe's ``probe_layer``,
    ``probe_n_train``, ``probe_n_test``; the calibration's
    ``zero_shot_calibrated_content_free_inputs`` and ``zero_shot_calibrated_p_cf_<label>``
    (the estimated bias p_cf); ``flags`` (constant predictors) when there are any.
    """
    run = AnalysisRun("downstream_consistency", lm, config)
    _check(task, config)
    modes = list(dict.fromkeys(config.modes))
    rows, summary, tables = [], {"n_examples": len(task.examples)}, {}
    if "probe" in modes:
        with run.stage("probe_s"):
            mode_rows, extra = _probe(lm, task, config, resolve_layer(lm, config.layer))
        rows += mode_rows
        summary.update(extra)
    zero_shot = [m for m in modes if m != "probe"]
    if zero_shot:
        with run.stage("zero_shot_s"):
            mode_rows, calibration, extra = _zero_shot(lm, task, config, zero_shot)
        rows += mode_rows
        summary.update(extra)
        if calibration is not None:
            tables["calibration"] = calibration
    columns = ["mode", "example_id", "kind", "text", "gold", "predicted"]
    predictions = pd.DataFrame(rows)
    predictions = predictions[columns + [c for c in predictions if c not in columns]]
    mode_order = {m: i for i, m in enumerate(modes)}
    predictions = predictions.sort_values("mode", key=lambda c: c.map(mode_order),
                                          kind="stable").reset_index(drop=True)
    metrics = consistency_metrics(predictions)
    for m in metrics[metrics["kind"] == ALL].itertuples():
        summary.update({f"{m.mode}_consistency": m.consistency, f"{m.mode}_kappa": m.kappa,
                        f"{m.mode}_accuracy_original": m.accuracy_original,
                        f"{m.mode}_accuracy_perturbed": m.accuracy_perturbed})
    originals = predictions[predictions["kind"] == ORIGINAL]["mode"].value_counts()
    flags = [constant_flag(mode, label, metrics, int(originals[mode]))
             for mode, label in constant_predictors(predictions).items()]
    if flags:
        summary["flags"] = flags
    return run.result({"predictions": predictions, "metrics": metrics, **tables}, summary,
                      {"kind": "task", "name": task.name, "size": len(task.examples),
                       "fingerprint": fingerprint(dataclasses.asdict(task))}, seed=config.seed)
