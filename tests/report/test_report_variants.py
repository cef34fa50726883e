"""The report's side-by-side section of tuned variants: tuned - base per study-level metric,
one column per tuned model, marked where the interval excludes zero; the recipes of variants
made by tunescope tune; absent with one tuned model."""

from __future__ import annotations

import numpy as np
import pandas as pd
from study.test_study_run import tiny_study_files  # noqa: F401 (fixture)

from tunescope.report.page import render_report
from tunescope.report.variants import differences, recipes, variants_section


def comparison(rows):
    return pd.DataFrame(rows, columns=["model", "analysis", "metric", "key", "difference",
                                       "ci_low", "ci_high"])


COMPARISONS = {
    "prediction_consistency": comparison([
        ("v-data-a", "prediction_consistency", "macro_accuracy", "", 0.125, 0.05, 0.2),
        ("v-data-b", "prediction_consistency", "macro_accuracy", "", -0.03, -0.1, 0.04),
        ("v-data-a", "prediction_consistency", "accuracy", "relation=P36", 0.5, 0.1, 0.9),
        ("v-data-b", "prediction_consistency", "accuracy", "relation=P36", 0.2, 0.1, 0.3)]),
    "attribution": comparison([
        ("v-data-b", "attribution", "instruction_score", "", 0.25, -0.01, 0.5)]),
}
MODELS = [{"key": "base", "role": "base", "metadata": {}},
          {"key": "v-data-a", "role": "tuned", "metadata": {"tuned_by": {
              "base": "gemma-3-270m", "data": "a.jsonl", "data_fingerprint": "aa", "n_examples": 10,
              "method": "lora", "seed": 0, "steps": 5, "final_loss": 0.5}}},
          {"key": "v-data-b", "role": "tuned", "metadata": {"tuned_by": {
              "base": "gemma-3-270m", "data": "b.jsonl", "data_fingerprint": "bb", "n_examples": 12,
              "method": "lora", "seed": 0, "steps": 6, "final_loss": 0.7}}},
          {"key": "other", "role": "tuned", "metadata": {}}]


def test_differences_side_by_side_with_marks():
    frame = differences(COMPARISONS, ["v-data-a", "v-data-b", "other"])
    assert frame.to_dict("records") == [
        {"analysis": "prediction_consistency", "metric": "macro_accuracy",
         "v-data-a": "+0.125 *", "v-data-b": "-0.03", "other": "–"},
        {"analysis": "attribution", "metric": "instruction_score",
         "v-data-a": "–", "v-data-b": "+0.25", "other": "–"}]


def test_recipes_of_tuned_variants_only():
    made = recipes(MODELS)
    assert made["model"].tolist() == ["v-data-a", "v-data-b"]
    assert made["data"].tolist() == ["a.jsonl", "b.jsonl"] and made["steps"].tolist() == [5, 6]


def test_section_in_the_report_only_with_two_or_more_tuned_models():
    html = render_report({}, MODELS, {}, COMPARISONS)
    assert 'id="variants"' in html and 'href="#variants"' in html
    assert "+0.125 *" in html and "b.jsonl" in html
    assert variants_section(MODELS[:2], COMPARISONS) == ""
    assert 'id="variants"' not in render_report({}, MODELS[:2], {}, COMPARISONS)


def test_a_study_with_two_tuned_models_compares_them_with_each_other(tiny_study_files, tmp_path):
    from study.test_study_run import tiny_raw

    from tunescope.compare import compare_results, compare_variants
    from tunescope.study import Study

    raw = tiny_raw(tiny_study_files, analyses={"prediction_consistency": {}})
    raw["tuned"] = [tiny_study_files["tuned"], tiny_study_files["random"]]
    run = Study.from_dict(raw).run(tmp_path / "run")
    by_model = run.results["prediction_consistency"]
    stored = pd.read_parquet(tmp_path / "run" / "compare" /
                             "prediction_consistency.variants.parquet")
    assert set(zip(stored["model"], stored["reference"])) == {("tiny-random", "tiny-tuned")}
    direct = compare_results(by_model["tiny-tuned"], by_model["tiny-random"], seed=1)
    assert np.allclose(stored["difference"].to_numpy(), direct["difference"].to_numpy(),
                       equal_nan=True)
    assert stored["metric"].tolist() == direct["metric"].tolist()
    three = compare_variants({**by_model, "third": by_model["tiny-random"]},
                             ["tiny-tuned", "tiny-random", "third"], n_boot=10)
    assert sorted(set(zip(three["model"], three["reference"]))) == [
        ("third", "tiny-random"), ("third", "tiny-tuned"), ("tiny-random", "tiny-tuned")]
    html = (tmp_path / "run" / "report.html").read_text()
    assert "Tuned models against each other" in html and 'id="variants"' in html
    assert compare_variants(by_model, ["tiny-tuned"]).empty
