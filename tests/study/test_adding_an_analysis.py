"""Adding an analysis touches only the files docs/adding-an-analysis.md names: one analysis
module (registered with its config and dataset kind), one comparer, one report section, one
test. Here all three live in this test module (registered the same way, then unregistered),
and a study runs the new analysis end to end: shards, combined table, comparison, report."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import torch

import tunescope
from study.test_study_run import tiny_raw, tiny_study_files  # noqa: F401 (fixture)
from tunescope.analyses.registry import REGISTRY, register
from tunescope.analyses.skeleton import AnalysisRun
from tunescope.compare.registry import COMPARERS, comparer
from tunescope.compare.table import bootstrap_rows, need
from tunescope.engine.batching import encode, left_pad
from tunescope.report.markup import table as html_table
from tunescope.report.sections.base import SECTIONS, Context, model_tables, section
from tunescope.result import fingerprint
from tunescope.stats.bootstrap import mean_parts, observed, ratio
from tunescope.study import Study

NAME = "toy_last_token_entropy"


@dataclass(frozen=True)
class ToyConfig:
    """``batch_size``: prompts per forward pass (None: the engine's default)."""

    batch_size: int | None = None


def last_token_entropy(lm, prompts, config: ToyConfig = ToyConfig()):
    """Entropy (nats) of the next-token distribution after each prompt."""
    run = AnalysisRun(NAME, lm, config)
    ids = encode(lm, list(prompts))

    @torch.inference_mode()
    def entropies(chunk):
        batch = left_pad([ids[i] for i in chunk], lm.tokenizer.pad_token_id, lm.device)
        logp = torch.log_softmax(lm.model(**batch.model_inputs()).logits[:, -1].float(), -1)
        return (-(logp.exp() * logp).sum(-1)).tolist()

    with run.stage("forward_s"):
        values = [v for part in run.batches(list(range(len(ids))), entropies) for v in part]
    table = pd.DataFrame({"prompt": list(prompts), "entropy": values})
    return run.result({"entropy": table}, {"mean_entropy": float(np.mean(values))},
                      {"kind": "prompts", "size": len(prompts),
                       "fingerprint": fingerprint(list(prompts))})


def compare_entropy(base, tuned, resampler):
    b, t = need(base, "entropy"), need(tuned, "entropy")
    shared = b.merge(t, on="prompt", suffixes=("_base", "_tuned"))
    parts = {s: mean_parts(shared[[f"entropy_{s}"]].to_numpy()) for s in ("base", "tuned")}
    w = resampler.weights(len(shared))
    return bootstrap_rows("mean_entropy", "", observed(*parts["base"]), observed(*parts["tuned"]),
                          ratio(w, *parts["base"]), ratio(w, *parts["tuned"]), paired=True,
                          n_base=len(shared), n_tuned=len(shared))


def entropy_section(ctx: Context) -> list[str]:
    return [model_tables(ctx, "entropy"), html_table(pd.DataFrame({"toy": ["rendered"]}))]


@pytest.fixture
def toy_analysis():
    register(NAME, ToyConfig, dataset="prompts")(last_token_entropy)
    comparer(NAME)(compare_entropy)
    section(NAME, "Toy · last-token entropy")(entropy_section)
    yield
    for registry in (REGISTRY, COMPARERS, SECTIONS):
        registry.pop(NAME, None)


def test_a_registered_analysis_runs_through_study_compare_and_report(toy_analysis,
                                                                     tiny_study_files, tmp_path):
    raw = tiny_raw(tiny_study_files, analyses=[NAME, "next_token_predictions"],
                   out=str(tmp_path / "run"))
    result = Study.from_dict(raw).run()
    assert not result.failed
    entropy = pd.read_parquet(tmp_path / "run" / "results" / NAME / "entropy.parquet")
    assert set(entropy["model"]) == {"tiny-base", "tiny-tuned"}
    assert np.isfinite(entropy["entropy"]).all() and (entropy["entropy"] > 0).all()
    stored = result.results[NAME]["tiny-base"]
    assert {"forward_s", "analysis_s"} <= set(stored.provenance["timings"])
    # the study's batches (the engine's default size) equal one prompt at a time
    lm = tunescope.load(tiny_study_files["base"])
    alone = last_token_entropy(lm, list(stored.tables["entropy"]["prompt"]), ToyConfig(1))
    np.testing.assert_allclose(alone.tables["entropy"]["entropy"],
                               stored.tables["entropy"]["entropy"], rtol=1e-6)
    comparison = pd.read_parquet(tmp_path / "run" / "compare" / f"{NAME}.parquet")
    row = comparison.set_index("metric").loc["mean_entropy"]
    base_mean = entropy[entropy["model"] == "tiny-base"]["entropy"].mean()
    tuned_mean = entropy[entropy["model"] == "tiny-tuned"]["entropy"].mean()
    assert row["difference"] == pytest.approx(tuned_mean - base_mean)
    assert row["ci_low"] <= row["difference"] <= row["ci_high"]
    html = (tmp_path / "run" / "report.html").read_text()
    assert "Toy · last-token entropy" in html and "rendered" in html
