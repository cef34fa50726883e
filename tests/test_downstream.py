"""downstream_consistency (C3): metrics by hand, zero-shot = manual scoring, batched pooled
features = unbatched ones, early stop, a probe trained on clean training inputs only, errors."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from tiny import tiny_lm, tiny_model, tiny_tokenizer
from tunescope.analyses import REGISTRY
from tunescope.analyses.downstream import (DownstreamConfig, consistency_metrics,
                                           downstream_consistency, pooled_representations,
                                           resolve_layer, stratified_split)
from tunescope.data.tasks import builtin_task
from tunescope.data.types import Task, TaskExample
from tunescope.engine.scoring import score_continuations
from tunescope.errors import TunescopeError
from tunescope.models.lm import LM
from tunescope.result import Result

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
                                 "n_pairs"]
    expected = {  # accuracy_original, accuracy_perturbed, consistency, n_pairs
        ("probe", "typo"): (1 / 3, 2 / 3, 2 / 3, 3),
        ("probe", "para"): (1 / 2, 0.0, 1 / 2, 2),
        ("probe", "all"): (1 / 3, 2 / 5, 3 / 5, 5),
        ("zero_shot", "typo"): (1.0, 1.0, 1.0, 3),
        ("zero_shot", "para"): (1.0, 1.0, 1.0, 2),
        ("zero_shot", "all"): (1.0, 1.0, 1.0, 5),
    }
    assert list(got.index) == list(expected)
    for key, values in expected.items():
        assert tuple(got.loc[key]) == pytest.approx(values)
    with pytest.raises(ValueError, match="without an original"):
        consistency_metrics(table[table["kind"] != "original"])


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


def test_mean_pooling_without_bos_leaves_out_the_first_word_mean_all_keeps_it():
    lm = LM.from_hf(tiny_model("gpt2"), tiny_tokenizer(bos=False), name="tiny-nobos")
    batched = pooled_representations(lm, TEXTS, 1, "mean", batch_size=2)
    manual = np.stack([_unbatched(lm, t, 1, "mean", skip_first=True) for t in TEXTS])
    np.testing.assert_allclose(batched, manual, atol=1e-5)
    batched = pooled_representations(lm, TEXTS, 1, "mean_all", batch_size=2)
    manual = np.stack([_unbatched(lm, t, 1, "mean", skip_first=False) for t in TEXTS])
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
                                   "logprob_negative", "logprob_positive"]
    assert list(metrics.columns) == ["mode", "kind", "accuracy_original", "accuracy_perturbed",
                                     "consistency", "n_pairs"]
    n_test = res.summary["probe_n_test"]
    assert res.summary["probe_n_train"] + n_test == 40
    kinds = ["paraphrase", "typo", "casing", "all"]
    assert list(metrics["kind"]) == kinds * 2
    assert list(metrics["n_pairs"]) == [n_test] * 3 + [3 * n_test] + [40] * 3 + [120]
    assert preds.loc[preds["mode"] == "probe", "logprob_positive"].isna().all()
    assert preds.loc[preds["mode"] == "zero_shot", "logprob_positive"].notna().all()
    for mode in ("probe", "zero_shot"):
        assert 0 <= res.summary[f"{mode}_consistency"] <= 1
        row = metrics[(metrics["mode"] == mode) & (metrics["kind"] == "all")].iloc[0]
        assert res.summary[f"{mode}_accuracy_original"] == row["accuracy_original"]
    assert res.provenance["seed"] == 0 and res.provenance["dataset"]["size"] == 40
    assert Result.load(res.save(tmp_path / "c3")) == res
