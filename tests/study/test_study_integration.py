"""The study runner on the real bundled models (a reduced default study), and with the
real comparison and report modules on tiny models."""

import pandas as pd
import pytest

from study.test_study_run import ANALYSES, tiny_raw, tiny_study_files  # noqa: F401 - the fixture
from tunescope.study import Study, rebuild_report


def test_report_with_the_real_compare_and_report(tiny_study_files, tmp_path):  # noqa: F811
    pytest.importorskip("tunescope.compare")
    raw = tiny_raw(tiny_study_files, analyses={a: ANALYSES[a] for a in (
        "prediction_consistency", "attention_knockout")})
    run = Study.from_dict(raw).run(tmp_path)
    assert run.ran == 4 and run.report == tmp_path / "report.html"
    html = run.report.read_text()
    assert "tiny-base" in html and "tiny-tuned" in html
    table = pd.read_parquet(tmp_path / "compare" / "prediction_consistency.parquet")
    assert table.columns[0] == "model" and set(table["model"]) == {"tiny-tuned"}
    run.report.unlink()
    assert rebuild_report(tmp_path).read_text() != ""


@pytest.mark.integration
def test_reduced_default_study_on_the_bundled_models(tmp_path):
    study = Study.default(["analyses=[next_token_predictions, prediction_consistency, "
                           "ffn_concepts]",
                           "datasets.pararel={relations: [P36], max_facts: 4}",
                           "datasets.vocabulary.size=500",
                           "analyses.ffn_concepts.rank=5"])
    run = study.run(tmp_path, compare=False, report=False)
    assert [(r["model"], r["status"]) for r in run.records] == \
        [("gemma-3-270m", "done")] * 3 + [("gemma-3-270m-sft", "done")] * 3 + \
        [("smollm2-135m-instruct", "done")] * 3
    sft = run.results["prediction_consistency"]["gemma-3-270m-sft"]
    assert sft.provenance["model"]["family"] == "gemma3_text"
    gemma = run.results["prediction_consistency"]["gemma-3-270m"]
    assert gemma.provenance["model"]["family"] == "gemma3_text"
    assert 0 <= gemma.summary["macro_accuracy"] <= 1
    assert run.results["ffn_concepts"]["smollm2-135m-instruct"].summary["n_layers"] == 30
