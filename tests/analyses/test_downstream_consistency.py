"""downstream_consistency (C3): metrics and kappa by hand and against scikit-learn, zero-shot =
manual scoring, content-free calibration by hand, constant-predictor flags, batched pooled
features = unbatched ones, early stop, a probe trained on clean training inputs only, errors."""

import dataclasses
import importlib
import math
import types

import numpy as np
import pandas as pd
import pytest
import torch
from tiny import tiny_lm, tiny_model, tiny_tokenizer

from tunescope.analyses import REGISTRY
from tunescope.analyses.downstream_consistency import (
    DownstreamConfig,
    cohen_kappa,
    consistency_metrics,
    constant_predictors,
    downstream_consistency,
    pooled_representations,
    resolve_layer,
    stratified_split,
)
from tunescope.data.tasks import builtin_task
from tunescope.data.types import Task, TaskExample
from tunescope.engine.scoring import score_continuations
from tunescope.errors import TunescopeError
from tunescope.models.lm import LM
from tunescope.result import Result

downstream_module = importlib.import_module("tunescope.analyses.downstream_consistency")

TEXTS = ["The capital of France is Paris.", "I like apples", "Write a short poem about the sea",
         "The film was wonderful!", "Explain why the sky is blue."]


def small_task(n_per_label: int = 4, perturb: bool = True) -> Task:
    """A hand-made sentiment task: ``n_per_label`` examples per label, typo + casing each."""
    examples = []
    for i in range(2 * n_per_label):
        label = ("negative", "positive")[i % 2]
        text = f"{TEXTS[i % len(TEXTS)]} number {i}"
        perts = (("typo", text.replace("a", "aa", 1)), ("casing", text.upper())) if perturb else ()
        examples.append(TaskExample(f"ex{i}", text, label, perts))
    return Task("tiny-sentiment", ("negative", "positive"),
                (("negative", " negative"), ("positive", " positive")),
                "Review: {text}\nSentiment:", tuple(examples))


# --- metrics --------------------------------------------------------------------------------

def test_consistency_metrics_hand_computed():
    gold = {"a": "pos", "b": "neg", "c": "pos"}
    preds = [("a", "original", "pos"), ("b", "original", "pos"), ("c", "original", "neg"),
             ("a", "typo", "pos"), ("b", "typo", "neg"), ("c", "typo", "neg"),
             ("a", "para", "neg"), ("b", "para", "pos")]
    table = pd.DataFrame([{"mode": m, "example_id": i, "kind": k, "gold": gold[i], "predicted": p}
                          for m in ("probe", "zero_shot") for i, k, p in preds])
    # the zero_shot copy: every prediction correct
    zs = table["mode"] == "zero_shot"
    table.loc[zs, "predicted"] = table.loc[zs, "gold"]
    got = consistency_metrics(table).set_index(["mode", "kind"])
    assert list(got.columns) == ["accuracy_original", "accuracy_perturbed", "consistency",
                                 "kappa", "n_pairs"]
    # kappa by hand, e.g. probe/typo: original (pos, pos, neg), perturbed (pos, neg, neg):
    # p_o = 2/3, p_e = 2/3 * 1/3 + 1/3 * 2/3 = 4/9, kappa = (2/3 - 4/9) / (1 - 4/9) = 0.4
    expected = {  # accuracy_original, accuracy_perturbed, consistency, kappa, n_pairs
        ("probe", "typo"): (1 / 3, 2 / 3, 2 / 3, 0.4, 3),
        ("probe", "para"): (1 / 2, 0.0, 1 / 2, 0.0, 2),
        ("probe", "all"): (1 / 3, 2 / 5, 3 / 5, 2 / 7, 5),
        ("zero_shot", "typo"): (1.0, 1.0, 1.0, 1.0, 3),
        ("zero_shot", "para"): (1.0, 1.0, 1.0, 1.0, 2),
        ("zero_shot", "all"): (1.0, 1.0, 1.0, 1.0, 5),
    }
    assert list(got.index) == list(expected)
    for key, values in expected.items():
        assert tuple(got.loc[key]) == pytest.approx(values)
    with pytest.raises(ValueError, match="without an original"):
        consistency_metrics(table[table["kind"] != "original"])


def test_cohen_kappa_against_sklearn_and_a_hand_computed_table():
    from sklearn.metrics import cohen_kappa_score

    # 2x2 table of (original, perturbed): (pos, pos) 20, (pos, neg) 5, (neg, pos) 10, (neg,
    # neg) 15; p_o = 35/50, p_e = 25/50 * 30/50 + 25/50 * 20/50 = 0.5, kappa = 0.2 / 0.5 = 0.4
    first = ["pos"] * 25 + ["neg"] * 25
    second = ["pos"] * 20 + ["neg"] * 5 + ["pos"] * 10 + ["neg"] * 15
    assert cohen_kappa(first, second) == pytest.approx(0.4)
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = rng.choice(["neg", "pos", "neutral"], size=30).tolist()
        b = [x if rng.random() < 0.6 else rng.choice(["neg", "pos", "neutral"]) for x in a]
        assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    assert cohen_kappa(["pos"] * 4, ["pos", "neg", "pos", "pos"]) == pytest.approx(
        cohen_kappa_score(["pos"] * 4, ["pos", "neg", "pos", "pos"])) == 0.0


def test_kappa_of_a_constant_predictor_is_nan_not_one():
    assert math.isnan(cohen_kappa(["pos"] * 5, ["pos"] * 5))
    assert math.isnan(cohen_kappa([], []))
    table = pd.DataFrame([{"mode": "zero_shot", "example_id": f"e{i}", "kind": k,
                           "gold": ("neg", "pos")[i % 2], "predicted": "pos"}
                          for i in range(4) for k in ("original", "typo")])
    got = consistency_metrics(table).set_index("kind")
    assert got.loc["all", "consistency"] == 1.0 and math.isnan(got.loc["all", "kappa"])
    assert constant_predictors(table) == {"zero_shot": "pos"}


# --- zero-shot ------------------------------------------------------------------------------

@pytest.mark.parametrize("chat", [False, True])
def test_zero_shot_is_argmax_of_manual_scores(chat):
    lm = tiny_lm("gemma3", chat=chat)
    task = small_task(2)
    res = downstream_consistency(lm, task, DownstreamConfig(modes=("zero_shot",), chat=chat))
    preds = res.tables["predictions"]
    assert len(preds) == 3 * len(task.examples)  # originals and both perturbations of all
    words = [" negative", " positive"] if not chat else ["negative", "positive"]
    for ex in task.examples[:2]:
        for kind, text in [("original", ex.text), ex.perturbations[0]]:
            prompt = lm.format_prompt(f"Review: {text}\nSentiment:", chat=chat)
            manual = score_continuations(lm, [prompt], [words], sep="")[0].sum_logprob
            row = preds[(preds["example_id"] == ex.id) & (preds["kind"] == kind)].iloc[0]
            assert row["text"] == text and row["gold"] == ex.label
            assert row["predicted"] == task.labels[int(np.argmax(manual))]
            np.testing.assert_allclose([row["logprob_negative"], row["logprob_positive"]],
                                       manual, atol=1e-5)


def _fake_scores(monkeypatch, scores_of):
    """score_continuations replaced by ``scores_of(prompt) -> [n_candidates]`` (nats)."""
    def fake(lm, prompts, candidates, **kwargs):
        return [types.SimpleNamespace(sum_logprob=np.asarray(scores_of(p), dtype=np.float64))
                for p in prompts]
    monkeypatch.setattr(downstream_module, "score_continuations", fake)


def test_calibration_turns_a_constant_predictor_into_a_working_one(monkeypatch):
    """Raw scores favour "positive" for every input (a constant predictor); the content-free
    inputs show the same bias, so calibration recovers the gold labels. Everything is checked
    against a hand computation from the scores."""
    task = small_task(4)
    gold = {ex.text: ex.label for ex in task.examples}
    gold.update({t: ex.label for ex in task.examples for _, t in ex.perturbations})
    content_free = {"N/A": (-3.0, -1.0), "[MASK]": (-2.5, -1.2), "": (-2.0, -1.5)}

    def scores_of(prompt):
        text = prompt.removeprefix("Review: ").removesuffix("\nSentiment:")
        if text in content_free:
            return content_free[text]
        return (-2.0, -1.0) if gold[text] == "negative" else (-3.0, -0.5)

    _fake_scores(monkeypatch, scores_of)
    res = downstream_consistency(tiny_lm("llama"), task, DownstreamConfig(
        modes=("zero_shot", "zero_shot_calibrated")))
    preds = res.tables["predictions"]
    raw = preds[preds["mode"] == "zero_shot"]
    cal = preds[preds["mode"] == "zero_shot_calibrated"]
    assert (raw["predicted"] == "positive").all()
    # p_cf by hand: each content-free input's two probabilities renormalised, then averaged
    p_cf = {"negative": 0.0, "positive": 0.0}
    for neg, pos in content_free.values():
        p_cf["negative"] += math.exp(neg) / (math.exp(neg) + math.exp(pos)) / 3
        p_cf["positive"] += math.exp(pos) / (math.exp(neg) + math.exp(pos)) / 3
    for label in p_cf:
        assert res.summary[f"zero_shot_calibrated_p_cf_{label}"] == pytest.approx(p_cf[label])
    assert res.summary["zero_shot_calibrated_content_free_inputs"] == ["N/A", "[MASK]", ""]
    for row in cal.itertuples():
        neg, pos = row.logprob_negative, row.logprob_positive
        norm = math.log(math.exp(neg) + math.exp(pos))
        expected = (neg - norm - math.log(p_cf["negative"]),
                    pos - norm - math.log(p_cf["positive"]))
        assert (row.calibrated_negative, row.calibrated_positive) == pytest.approx(expected)
        assert row.predicted == ("negative" if expected[0] > expected[1] else "positive")
        assert row.predicted == row.gold  # the bias removed, the margins separate the labels
    assert raw[["calibrated_negative", "calibrated_positive"]].isna().all().all()
    np.testing.assert_array_equal(raw["logprob_positive"], cal["logprob_positive"])
    calibration = res.tables["calibration"]
    assert list(calibration["input"]) == ["N/A", "[MASK]", ""]
    assert calibration["probability_positive"].mean() == pytest.approx(p_cf["positive"])

    summary = res.summary
    assert (summary["zero_shot_accuracy_original"], summary["zero_shot_consistency"]) == (0.5, 1.0)
    assert summary["zero_shot_kappa"] is None  # NaN: both lists constant
    assert summary["zero_shot_calibrated_accuracy_original"] == 1.0
    assert summary["zero_shot_calibrated_kappa"] == 1.0
    assert len(summary["flags"]) == 1
    assert summary["flags"][0].startswith("zero_shot is a constant predictor")
    assert "'positive'" in summary["flags"][0] and "8 original inputs" in summary["flags"][0]


def test_calibrated_mode_equals_hand_calibration_of_the_stored_scores():
    """On a real (tiny) model: the calibration table's log-probabilities are the content-free
    prompts' manual scores, and every calibrated prediction is the argmax of the stored raw
    scores minus the bias computed from that table by hand."""
    lm = tiny_lm("gemma3")
    task = small_task(2)
    res = downstream_consistency(lm, task, DownstreamConfig(
        modes=("zero_shot_calibrated",), content_free_inputs=("N/A", "")))
    table = res.tables["calibration"]
    for row in table.itertuples():
        manual = score_continuations(lm, [f"Review: {row.input}\nSentiment:"],
                                     [[" negative", " positive"]], sep="")[0].sum_logprob
        np.testing.assert_allclose([row.logprob_negative, row.logprob_positive], manual,
                                   atol=1e-5)
    probs = np.exp(table[["logprob_negative", "logprob_positive"]].to_numpy())
    log_p_cf = np.log((probs / probs.sum(1, keepdims=True)).mean(0))
    preds = res.tables["predictions"]
    assert set(preds["mode"]) == {"zero_shot_calibrated"}
    scores = preds[["logprob_negative", "logprob_positive"]].to_numpy()
    log_p = scores - np.log(np.exp(scores).sum(1, keepdims=True))
    np.testing.assert_allclose(preds[["calibrated_negative", "calibrated_positive"]],
                               log_p - log_p_cf, atol=1e-9)
    assert list(preds["predicted"]) == [task.labels[i] for i in np.argmax(log_p - log_p_cf, 1)]


def test_constant_flag_only_for_one_label_on_every_original(monkeypatch):
    task = small_task(3)
    texts = [ex.text for ex in task.examples]
    # one original of six gets "negative": not constant (the rule is strict)
    _fake_scores(monkeypatch, lambda p: (0.0, -1.0) if texts[0] in p else (-1.0, 0.0))
    res = downstream_consistency(tiny_lm("llama"), task, DownstreamConfig(modes=("zero_shot",)))
    assert "flags" not in res.summary
    assert res.summary["zero_shot_kappa"] is not None


# --- representations ------------------------------------------------------------------------

def _unbatched(lm, text, layer, pooling, skip_first):
    """resid_post of block ``layer`` for one text, from a plain hook; pooled by hand."""
    ids = torch.tensor([lm.tokenizer(text)["input_ids"]])
    seen = {}
    handle = lm.anatomy.blocks[layer].register_forward_hook(
        lambda m, a, out: seen.setdefault("h", out[0] if isinstance(out, tuple) else out))
    try:
        with torch.no_grad():
            lm.model(input_ids=ids)
    finally:
        handle.remove()
    h = seen["h"][0]  # [T, d_model]
    return (h[-1] if pooling == "last" else h[1 if skip_first else 0:].mean(0)).numpy()


@pytest.mark.parametrize("family", ["llama", "gemma3", "gpt2"])
@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_pooled_features_equal_unbatched(family, pooling):
    lm = tiny_lm(family)
    for layer in (0, lm.anatomy.n_layers - 1):
        batched = pooled_representations(lm, TEXTS, layer, pooling, batch_size=3)
        assert batched.shape == (len(TEXTS), lm.anatomy.d_model) and batched.dtype == np.float32
        manual = np.stack([_unbatched(lm, t, layer, pooling, skip_first=True) for t in TEXTS])
        np.testing.assert_allclose(batched, manual, atol=1e-5)


def test_mean_pooling_without_bos_keeps_the_first_word():
    """Without a special token at position 0 "mean" averages every token, like "mean_all"."""
    lm = LM.from_hf(tiny_model("gpt2"), tiny_tokenizer(bos=False), name="tiny-nobos")
    manual = np.stack([_unbatched(lm, t, 1, "mean", skip_first=False) for t in TEXTS])
    for pooling in ("mean", "mean_all"):
        batched = pooled_representations(lm, TEXTS, 1, pooling, batch_size=2)
        np.testing.assert_allclose(batched, manual, atol=1e-5)


def test_forward_pass_stops_after_the_probe_layer():
    lm = tiny_lm("llama")
    calls = [0] * lm.anatomy.n_layers
    handles = [block.register_forward_hook(lambda *a, i=i: calls.__setitem__(i, calls[i] + 1))
               for i, block in enumerate(lm.anatomy.blocks)]
    try:
        pooled_representations(lm, TEXTS, 1, batch_size=2)
    finally:
        for h in handles:
            h.remove()
    n_batches = 3
    assert calls == [n_batches, n_batches, 0]


# --- probe ----------------------------------------------------------------------------------

def test_split_is_stratified_and_deterministic():
    task = small_task(5)
    train, test = stratified_split(task.examples, 0.6, seed=3)
    assert (train, test) == stratified_split(task.examples, 0.6, seed=3)
    assert sorted(train + test) == list(range(10)) and not set(train) & set(test)
    assert sorted(task.examples[i].label for i in train) == ["negative"] * 3 + ["positive"] * 3
    assert any(stratified_split(task.examples, 0.6, seed=s)[0] != train for s in range(4, 10))


def test_probe_is_deterministic_and_trained_on_clean_train_inputs_only(monkeypatch):
    from sklearn.linear_model import LogisticRegression

    lm = tiny_lm("llama")
    task = small_task(4)
    config = DownstreamConfig(modes=("probe",), layer=-2, seed=7)
    fitted = []
    original_fit = LogisticRegression.fit

    def spy(self, X, y, *args, **kwargs):
        fitted.append((np.asarray(X).copy(), list(y)))
        return original_fit(self, X, y, *args, **kwargs)

    monkeypatch.setattr(LogisticRegression, "fit", spy)
    first = downstream_consistency(lm, task, config)
    second = downstream_consistency(lm, task, config)
    assert first.tables["predictions"].equals(second.tables["predictions"])

    train, test = stratified_split(task.examples, 0.5, seed=7)
    preds = first.tables["predictions"]
    assert set(preds["example_id"]) == {task.examples[i].id for i in test}
    assert not set(preds["example_id"]) & {task.examples[i].id for i in train}
    assert len(preds) == 3 * len(test)
    X, y = fitted[0]
    assert y == [task.examples[i].label for i in train]
    clean = pooled_representations(lm, [task.examples[i].text for i in train], 1)
    standardised = (clean - clean.mean(0)) / np.where(clean.std(0) > 0, clean.std(0), 1)
    np.testing.assert_allclose(X, standardised, atol=1e-4)
    assert first.summary["probe_layer"] == 1
    assert (first.summary["probe_n_train"], first.summary["probe_n_test"]) == (4, 4)
    assert "logprob_negative" not in preds  # zero-shot scores only


# --- errors ---------------------------------------------------------------------------------

def test_clear_errors():
    lm = tiny_lm("llama")
    task = small_task(2)
    cases = [
        (dataclasses.replace(task, examples=()), {}, "no examples"),
        (small_task(2, perturb=False), {}, "no perturbations"),
        (dataclasses.replace(task, examples=task.examples[:3]), {"modes": ("probe",)},
         "at least 2 examples of each label"),
        (dataclasses.replace(task, examples=task.examples[::2]), {"modes": ("probe",)},
         "two or more labels"),
        (task, {"modes": ("probe", "finetune")}, "unknown mode"),
        (task, {"modes": ("zero_shot_calibrated",), "content_free_inputs": ()},
         "content-free"),
        (task, {"pooling": "max"}, "unknown pooling"),
        (task, {"layer": 3, "modes": ("probe",)}, "out of range"),
        (task, {"layer": -4, "modes": ("probe",)}, "out of range"),
        (task, {"train_fraction": 1.0, "modes": ("probe",)}, "train_fraction"),
    ]
    for bad_task, overrides, message in cases:
        with pytest.raises(TunescopeError, match=message):
            downstream_consistency(lm, bad_task, DownstreamConfig(**overrides))
    assert resolve_layer(lm, None) == 2 and resolve_layer(lm, -3) == 0


# --- end to end -----------------------------------------------------------------------------

def test_builtin_slice_end_to_end_and_round_trip(tmp_path):
    task = builtin_task()
    task = dataclasses.replace(task, examples=task.examples[:40])
    assert REGISTRY["downstream_consistency"].dataset == "task"
    res = downstream_consistency(tiny_lm("gpt2"), task,
                                 REGISTRY["downstream_consistency"].make_config(pooling="last"))
    preds, metrics = res.tables["predictions"], res.tables["metrics"]
    assert list(preds.columns) == ["mode", "example_id", "kind", "text", "gold", "predicted",
                                   "logprob_negative", "logprob_positive",
                                   "calibrated_negative", "calibrated_positive"]
    assert list(metrics.columns) == ["mode", "kind", "accuracy_original", "accuracy_perturbed",
                                     "consistency", "kappa", "n_pairs"]
    assert list(res.tables) == ["predictions", "metrics", "calibration"]
    n_test = res.summary["probe_n_test"]
    assert res.summary["probe_n_train"] + n_test == 40
    kinds = ["paraphrase", "typo", "casing", "synonym", "all"]
    modes = ["probe", "zero_shot", "zero_shot_calibrated"]
    assert list(metrics["mode"]) == [m for m in modes for _ in kinds]
    assert list(metrics["kind"]) == kinds * 3
    n_synonym = sum("synonym" in dict(ex.perturbations) for ex in task.examples)
    assert 30 <= n_synonym < 40
    zero_shot_pairs = [40, 40, 40, n_synonym, 120 + n_synonym]
    assert list(metrics["n_pairs"])[5:] == zero_shot_pairs * 2
    assert list(metrics["n_pairs"])[:3] == [n_test] * 3
    assert preds.loc[preds["mode"] == "probe", "logprob_positive"].isna().all()
    assert preds.loc[preds["mode"] != "probe", "logprob_positive"].notna().all()
    for mode in modes:
        assert 0 <= res.summary[f"{mode}_consistency"] <= 1
        row = metrics[(metrics["mode"] == mode) & (metrics["kind"] == "all")].iloc[0]
        assert res.summary[f"{mode}_accuracy_original"] == row["accuracy_original"]
        kappa = res.summary[f"{mode}_kappa"]  # None where NaN (JSON)
        assert math.isnan(row["kappa"]) if kappa is None else kappa == row["kappa"]
    assert res.provenance["config"]["content_free_inputs"] == ["N/A", "[MASK]", ""]
    assert res.provenance["seed"] == 0 and res.provenance["dataset"]["size"] == 40
    assert Result.load(res.save(tmp_path / "c3")) == res
