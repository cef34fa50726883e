"""The HTML report: escaping, self-containment, one section per analysis with its figures,
missing models, robustness (NaN, empty tables, one or three models) and the atomic write.

:func:`tiny_study` runs every registered analysis on tiny models (small sizes) and is shared
with the browser test (``tests/test_report_browser.py``)."""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import os
import re

import numpy as np
import pandas as pd
import pytest
import torch
from tiny import CORPUS, fact_relations, tiny_trained_lm

from tunescope.analyses import REGISTRY
from tunescope.data import builtin_pairs, builtin_task
from tunescope.data.types import InstructionPrompt
from tunescope.errors import OutputError
from tunescope.models.lm import LM
from tunescope.report import render_report, write_report
from tunescope.report.sections import SECTIONS
from tunescope.result import Result

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(2)>'
EVIL = SCRIPT + IMG
"""Injected into prompts, responses, tokens, model names and keys, relation names."""
WORDS = list(dict.fromkeys(w.strip(".,:!?").lower() for line in CORPUS for w in line.split()))
COLUMNS = ["analysis", "metric", "key", "depth", "base", "tuned", "difference", "ci_low",
           "ci_high", "test", "statistic", "p_value", "n_base", "n_tuned", "note"]
EVIL_KEY = "tuned-b" + EVIL


# --- a study of tiny models -------------------------------------------------------------------

def _datasets():
    pairs = builtin_pairs()
    pairs = [p for p in pairs if p.label == 1][:6] + [p for p in pairs if p.label == 0][:6]
    task = builtin_task()
    examples = ([e for e in task.examples if e.label == task.labels[0]][:3]
                + [e for e in task.examples if e.label == task.labels[1]][:3])
    prompts = [
        InstructionPrompt("p1", "Write a short poem about the sea.\nInput: the sea is blue.",
                          ((0, 33),), source="builtin", category="writing"),
        InstructionPrompt("p-" + EVIL, f"Explain why the sky is blue. {SCRIPT} {IMG}",
                          ((0, 28),), source="evil" + EVIL, category="qa"),
    ]
    return {"pararel": fact_relations(), "pairs": pairs,
            "task": dataclasses.replace(task, examples=tuple(examples)),
            "instructions": prompts, "vocabulary": WORDS, "prompts": ["The capital of France is",
                                                                       "Paris is the capital of"]}


CONFIGS = {"attention_knockout": {"max_examples": 3, "window": 3},
           "extraction_rate": {"max_examples": 3}, "subject_enrichment": {"max_examples": 3},
           "attribution": {"max_new_tokens": 4},
           "attention_heads": {"top_k": 10, "baseline": 20, "z": 0.5, "similarity": "model"},
           "ffn_concepts": {"rank": 4, "top_words": 5, "runs": 2}}


def _inject(results: dict[str, Result]) -> None:
    """Put the attack strings into text fields of the attribution and C1 tables."""
    res = results["attribution"]
    per_prompt = res.tables["per_prompt"]
    per_prompt.loc[per_prompt.index[-1], "response"] = "answer " + EVIL
    density = res.tables["token_density"]
    density.loc[density.index[0], "token"] = EVIL
    per_relation = results["prediction_consistency"].tables["per_relation"]
    extra = per_relation.iloc[:1].assign(relation="P" + EVIL, consistency=0.5)
    results["prediction_consistency"].tables["per_relation"] = pd.concat(
        [per_relation, extra], ignore_index=True)


def _variant(lm: LM, scale: float, seed: int = 1) -> LM:
    """A copy of ``lm`` with Gaussian noise of std ``scale`` added to every weight matrix: a
    'tuned' model of the same architecture that still knows the facts (no second training)."""
    model = copy.deepcopy(lm.model)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.add_(torch.randn(p.shape, generator=gen) * scale)
    return LM.from_hf(model, lm.tokenizer, name=f"{lm.name}-variant", source="memory")


@functools.lru_cache(maxsize=None)
def tiny_study():
    """(study, models, results, comparisons, run_info) of a base and two tuned tiny models
    (the second of another family, its key and name carrying attack strings) over every
    registered analysis."""
    from tunescope.compare import compare_study

    data = _datasets()
    base = tiny_trained_lm("llama")
    lms = {"base": base, "tuned-a": _variant(base, 0.02), EVIL_KEY: tiny_trained_lm("gemma3")}
    models = []
    for key, lm in lms.items():
        meta = dict(lm.metadata, name=f"{lm.name} {EVIL}" if key == EVIL_KEY else lm.name)
        models.append({"key": key, "role": "base" if key == "base" else "tuned",
                       "spec": f"memory:{key}", "metadata": meta})
    results = {name: {} for name in REGISTRY}
    for key, lm in lms.items():
        per_model = {}
        for name, analysis in REGISTRY.items():
            config = analysis.make_config(**CONFIGS.get(name, {}))
            per_model[name] = analysis.run(lm, data[analysis.dataset], config)
        _inject(per_model)
        for name, res in per_model.items():
            results[name][key] = res
    comparisons = {name: compare_study(per, "base", n_boot=50, seed=0)
                   for name, per in results.items()}
    study = {"base": "base", "tuned": ["tuned-a", EVIL_KEY], "analyses": list(REGISTRY),
             "note": EVIL}
    run_info = {"wall_s": 1.5, "jobs": [{"model": k, "analysis": a, "status": "done",
                                         "analysis_s": 0.1} for k in lms for a in REGISTRY]}
    return study, models, results, comparisons, run_info


# --- hand-built Results -----------------------------------------------------------------------

def _meta(name, family="llama", n_layers=3):
    return {"name": name, "source": "memory", "family": family, "dtype": "float32",
            "chat_template": False, "n_layers": n_layers}


def _c1(consistency: list[float], relations=("P36", "P17")) -> Result:
    per_relation = pd.DataFrame({"relation": list(relations), "accuracy": [0.5] * len(relations),
                                 "consistency": consistency,
                                 "consistent_subjects": [0.25] * len(relations),
                                 "consistent_and_correct": [0.0] * len(relations)})
    return Result("prediction_consistency", {"per_relation": per_relation},
                  {"macro_consistency": consistency[-1]},
                  {"model": _meta("m")})


def _c2(gaps: list[float]) -> Result:
    n = len(gaps)
    layers = pd.DataFrame({"pooling": "mean", "layer": range(n),
                           "relative_depth": np.arange(n) / (n - 1), "gap": gaps,
                           "auc": [0.5 + g / 2 for g in gaps]})
    return Result("representation_consistency", {"layers": layers}, {"n_layers": n - 1},
                  {"model": _meta("m", n_layers=n - 1)})


def _comparison(analysis: str, model: str, rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame([{c: r.get(c, np.nan if c not in ("metric", "key", "test", "note")
                                     else "") for c in COLUMNS} for r in rows])
    frame["analysis"] = analysis
    return frame.assign(model=model)[["model", *COLUMNS]]


def _models(*keys, families=None):
    families = families or ["llama"] * len(keys)
    return [{"key": k, "role": "base" if i == 0 else "tuned", "spec": k,
             "metadata": _meta(k, fam)} for i, (k, fam) in enumerate(zip(keys, families))]


def _sections(page: str) -> dict[str, str]:
    """{section id: its HTML} of the analysis sections."""
    return dict(re.findall(r'<section class="analysis" id="([^"]+)">(.*?)</section>', page, re.S))


# --- tests ------------------------------------------------------------------------------------

def test_every_analysis_has_a_section_with_its_figures():
    study, models, results, comparisons, run_info = tiny_study()
    page = render_report(study, models, results, comparisons, run_info)
    sections = _sections(page)
    expected = {"prediction_consistency": 2, "representation_consistency": 2,
                "downstream_consistency": 2, "attention_knockout": 1, "extraction_rate": 1,
                "subject_enrichment": 2, "attribution": 1, "attention_heads": 1,
                "ffn_concepts": 2, "next_token_predictions": 1}
    assert set(expected) == set(REGISTRY) == set(SECTIONS)
    for name, n in expected.items():
        body = sections[f"sec-{name}"]
        assert body.count('<figure class="plot">') == n, name
        assert body.count("<svg") == n, name
        assert body.count("<figcaption>") == n + (name == "attribution"), name
        assert "could not be drawn" not in body and "Nothing to plot" not in body, name
        assert "No comparison table" not in body, name
    assert sections["sec-attribution"].count('class="heatmap-model"') == 2 * 3  # 2 prompts x 3
    assert "Different families: compare metrics, not weights." in page


def test_strings_from_data_and_models_are_escaped():
    study, models, results, comparisons, run_info = tiny_study()
    page = render_report(study, models, results, comparisons, run_info)
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert SCRIPT not in page and IMG not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 6
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in page


def test_matplotlib_text_is_escaped_in_svg():
    from tunescope.report import figures
    nasty = "--><script>alert(1)</script><!-- & $x^2$"
    with figures.style():
        fig = figures.grouped_bars([(nasty, [nasty, "b"], {nasty: [1.0, 2.0]})],
                                   {nasty: "#123456"}, nasty)
        svg = figures.to_svg(fig)
    assert "<script" not in svg and "<!--" not in svg and "-->" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg and "$x^2$" in svg  # no math text
    assert svg.startswith("<svg") and 'id="f' in svg


def test_page_is_self_contained():
    page = render_report(*tiny_study())
    assert not re.search(r'(src|href)\s*=\s*["\']?\s*(https?:)?//', page, re.I)
    assert not re.search(r"<link\b", page, re.I)
    assert not re.search(r"<script\b", page, re.I)
    assert not re.search(r"url\(\s*['\"]?https?:", page, re.I)
    assert not re.search(r"@import", page, re.I)
    assert re.findall(r'href="([^"]*)"', page) and all(
        h.startswith("#") for h in re.findall(r'href="([^"]*)"', page))


def test_missing_model_and_missing_analysis_are_reported():
    models = _models("base", "tuned")
    results = {"prediction_consistency": {"base": _c1([0.5, 1.0])},
               "representation_consistency": {"base": _c2([0.1, 0.2, 0.3, 0.2]),
                                              "tuned": _c2([0.2, 0.2, 0.4, 0.3])}}
    run_info = {"jobs": [{"model": "tuned", "analysis": "prediction_consistency",
                          "status": "failed"}]}
    page = render_report({}, models, results, {}, run_info)
    sections = _sections(page)
    c1 = sections["sec-prediction_consistency"]
    assert "No prediction_consistency result for the tuned model tuned (job status: failed)." in c1
    assert "No comparison table: fewer than two models have results." in c1
    assert c1.count("<svg") == 2                      # the base model alone is still drawn
    c2 = sections["sec-representation_consistency"]
    assert "No representation_consistency result" not in c2
    assert "No comparison table: no comparison rows were computed" in c2
    assert set(sections) == {"sec-prediction_consistency", "sec-representation_consistency"}


def test_comparison_rows_are_shown_with_ci_and_notes():
    models = _models("base", "tuned", families=["llama", "gemma3_text"])
    results = {"prediction_consistency": {"base": _c1([0.5, 1.0]), "tuned": _c1([0.75, 1.0])}}
    comp = _comparison("prediction_consistency", "tuned", [
        {"metric": "consistency", "key": "", "base": 0.75, "tuned": 0.875, "difference": 0.125,
         "ci_low": 0.0, "ci_high": 0.25, "test": "bootstrap_paired", "p_value": 0.03125,
         "n_base": 2, "n_tuned": 2, "note": "different architectures: compared by metrics"},
        {"metric": "consistency", "key": "relation=P36", "base": 0.5, "tuned": 0.75,
         "difference": 0.25, "n_base": 1, "n_tuned": 1,
         "note": "different architectures: compared by metrics; one relation only"}])
    page = render_report({}, models, results, {"prediction_consistency": comp})
    c1 = _sections(page)["sec-prediction_consistency"]
    assert "[0, 0.25]" in c1 and "0.03125" in c1 and "bootstrap_paired" in c1
    assert "relation=P36" in c1
    assert '<p class="warning">tuned: different architectures: compared by metrics</p>' in c1
    assert "<td>one relation only</td>" in c1            # the caveat of that row alone
    assert c1.count("different architectures") == 1
    assert ("Different families: compare metrics, not weights. Base base is &#x27;llama&#x27;"
            in page)


def test_nan_empty_tables_and_unknown_analyses():
    models = _models("base", "t1", "t2")
    empty = Result("prediction_consistency", {"per_relation": pd.DataFrame(
        columns=["relation", "accuracy", "consistency"])}, {}, {"model": _meta("x")})
    results = {
        "prediction_consistency": {"base": _c1([math.nan, math.nan]), "t1": empty,
                                   "t2": _c1([0.3, math.nan])},
        "representation_consistency": {"base": _c2([math.nan] * 4), "t1": _c2([math.nan] * 4)},
        "future_analysis": {"base": Result("future_analysis", {"t": pd.DataFrame({"a": [1]})},
                                           {"score": 0.25, "label": EVIL})},
    }
    page = render_report({"analyses": ["future_analysis", "prediction_consistency"]}, models,
                         results, {})
    sections = _sections(page)
    assert list(sections) == ["sec-future_analysis", "sec-prediction_consistency",
                              "sec-representation_consistency"]          # study order first
    assert sections["sec-prediction_consistency"].count("<svg") == 2     # t2 has a value
    c2 = sections["sec-representation_consistency"]
    assert "<svg" not in c2
    assert c2.count("Nothing to plot: representation gap per layer has no finite values.") == 1
    assert c2.count("Nothing to plot: representation auc per layer has no finite values.") == 1
    future = sections["sec-future_analysis"]
    assert "The report has no figures for this analysis" in future
    assert "<td>score</td>" in future and ">0.25<" in future and "<script" not in future


def test_malformed_result_costs_only_its_own_figures():
    models = _models("base")
    broken = Result("attention_knockout", {"curves": pd.DataFrame({"oops": [1, 2]})},
                    {"n_examples": 2})
    page = render_report({}, models, {"attention_knockout": {"base": broken},
                                      "prediction_consistency": {"base": _c1([0.5, 1.0])}}, {})
    sections = _sections(page)
    assert "This section could not be drawn (KeyError" in sections["sec-attention_knockout"]
    assert "n_examples" in sections["sec-attention_knockout"]
    assert sections["sec-prediction_consistency"].count("<svg") == 2


def test_rendering_is_deterministic_and_ids_are_unique():
    models = _models("base", "tuned")
    results = {"representation_consistency": {"base": _c2([0.1, 0.2, 0.3, 0.2]),
                                              "tuned": _c2([0.2, 0.2, 0.4, 0.3])},
               "prediction_consistency": {"base": _c1([0.5, 1.0]), "tuned": _c1([0.7, 0.9])}}
    first = render_report({}, models, results, {})
    assert render_report({}, models, results, {}) == first
    ids = re.findall(r'\bid="([^"]+)"', first)
    assert len(ids) == len(set(ids))


def test_write_report_is_atomic(tmp_path, monkeypatch):
    models = _models("base")
    results = {"prediction_consistency": {"base": _c1([0.5, 1.0])}}
    target = write_report(tmp_path / "run" / "report.html", {}, models, results, {})
    assert target.read_text(encoding="utf-8") == render_report({}, models, results, {})
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write report to .*file/report.html"):
        write_report(blocker / "report.html", {}, models, results, {})

    def fail(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OutputError, match="No space left on device"):
        write_report(tmp_path / "run2" / "report.html", {}, models, results, {})
    assert list((tmp_path / "run2").iterdir()) == []
    with pytest.raises(OutputError):
        write_report(target, {}, _models("other"), results, {})
    assert target.read_text(encoding="utf-8") == render_report({}, models, results, {})


def test_value_formatting():
    from tunescope.report.markup import fmt
    assert fmt(0.123456) == "0.1235" and fmt(12345.6) == "1.235e+04" and fmt(3) == "3"
    assert fmt(float("nan")) == fmt(None) == "–" and fmt(float("-inf")) == "−∞"
    assert fmt(np.bool_(True)) == "yes" and fmt("<b>") == "&lt;b&gt;"
    assert fmt({"a": 0.8333333, "b": [1 / 3, "<i>"]}) == (
        "{&quot;a&quot;: 0.8333, &quot;b&quot;: [0.3333, &quot;&lt;i&gt;&quot;]}")
    assert fmt("x" * 200, limit=10) == "x" * 9 + "…"


def test_flagged_figures_are_shown_as_warnings_not_as_summary_numbers():
    """A Result's summary["flags"] (degenerate figures) become escaped warnings in its
    section; the flag list is not shown as a summary number."""
    models = _models("base", "tuned")
    flagged = _c1([0.5, 1.0])
    flagged.summary["flags"] = ["C1 P30: one candidate object " + SCRIPT]
    results = {"prediction_consistency": {"base": flagged, "tuned": _c1([0.75, 1.0])}}
    c1 = _sections(render_report({}, models, results, {}))["sec-prediction_consistency"]
    assert '<p class="warning">base: C1 P30: one candidate object &lt;script&gt;' in c1
    assert c1.count("one candidate object") == 1 and "<td>flags</td>" not in c1
