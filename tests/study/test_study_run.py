"""The study runner end to end on tiny models: run store, resume, changed specs, the local
executor, seeds, failures."""

import json
import sys
import types

import pandas as pd
import pytest
from tiny import FACT_TEMPLATES, FACTS, tiny_lm, tiny_trained_lm

import tunescope
from tunescope.common.atomic import TEMP_PREFIX
from tunescope.errors import OutputError, TunescopeError
from tunescope.models import loading
from tunescope.result import Result
from tunescope.study import Study, rebuild_report
from tunescope.study import jobs as jobs_mod

ANALYSES = {
    "next_token_predictions": {"k": 3},
    "prediction_consistency": {},
    "representation_consistency": {},
    "downstream_consistency": {},
    "attention_knockout": {"max_examples": 4, "window": 3},
    "extraction_rate": {"max_examples": 4},
    "subject_enrichment": {"max_examples": 4},
    "attribution": {"max_new_tokens": 3},
    "attention_heads": {"top_k": 10, "baseline": 50, "similarity": "model"},
    "ffn_concepts": {"rank": 4, "top_words": 5},
}


def save_lm(lm, directory):
    lm.model.save_pretrained(directory)
    lm.tokenizer.save_pretrained(directory)
    return str(directory)


def write_pararel(root):
    """A ParaRel directory (flat layout) holding the facts the tiny trained models learnt."""
    (root / "patterns").mkdir(parents=True)
    (root / "tuples").mkdir()
    (root / "patterns" / "P36.jsonl").write_text(
        "".join(json.dumps({"pattern": t}) + "\n" for t in FACT_TEMPLATES))
    (root / "tuples" / "P36.jsonl").write_text(
        "".join(json.dumps({"sub_label": s, "obj_label": o, "uuid": f"f{i}"}) + "\n"
                for i, (s, o) in enumerate(FACTS)))
    return str(root)


@pytest.fixture(scope="session")
def tiny_study_files(tmp_path_factory):
    """Saved tiny models (a Llama and a Gemma 3 that learnt six capitals; an untrained Llama)
    and the matching ParaRel directory."""
    root = tmp_path_factory.mktemp("study-files")
    return {"base": save_lm(tiny_trained_lm("llama"), root / "tiny-base"),
            "tuned": save_lm(tiny_trained_lm("gemma3"), root / "tiny-tuned"),
            "random": save_lm(tiny_lm("llama", seed=3), root / "tiny-random"),
            "pararel": write_pararel(root / "pararel")}


def tiny_raw(files, analyses=None, **extra):
    """A reduced study over the tiny models (every analysis unless ``analyses`` is given)."""
    return {"base": files["base"], "tuned": [files["tuned"]],
            "analyses": ANALYSES if analyses is None else analyses,
            "datasets": {"pararel": {"source": files["pararel"]}, "pairs": {"max_pairs": 12},
                         "task": {"max_examples": 12}, "instructions": {"max_prompts": 2},
                         "vocabulary": {"size": 80}, "prompts": {"max_prompts": 2}},
            "seed": 1, **extra}


@pytest.fixture
def count_jobs(monkeypatch):
    """Counts the jobs that actually run (and the model loads)."""
    calls = {"jobs": [], "loads": []}
    real_execute, real_load = jobs_mod.execute, tunescope.load

    def execute(lm, job, *args):
        calls["jobs"].append(str(job))
        return real_execute(lm, job, *args)

    def load(spec, **kwargs):
        calls["loads"].append(spec)
        return real_load(spec, **kwargs)

    import tunescope.study.local_executor as local
    monkeypatch.setattr(local, "execute", execute)
    monkeypatch.setattr(loading, "load", load)
    return calls


def test_local_study_end_to_end(tiny_study_files, tmp_path, count_jobs):
    study = Study.from_dict(tiny_raw(tiny_study_files))
    run = study.run(tmp_path / "run", compare=False, report=False)
    n = 2 * len(ANALYSES)
    assert [r["status"] for r in run.records] == ["done"] * n, run.failed
    assert run.ran == n and run.skipped == 0 and run.report is None
    # each model loaded once, all its jobs, base first
    assert count_jobs["loads"] == [tiny_study_files["base"], tiny_study_files["tuned"]]
    assert count_jobs["jobs"][:len(ANALYSES)] == [f"tiny-base/{a}" for a in ANALYSES]
    root = tmp_path / "run"
    for name in ("study.yaml", "spec.json", "run.json"):
        assert (root / name).is_file()
    for key in ("tiny-base", "tiny-tuned"):
        for analysis in ANALYSES:
            assert (root / "shards" / key / analysis / "result.json").is_file()
    # combined tables: every model's rows, "model" first, equal to the shards' tables
    shard = Result.load(root / "shards" / "tiny-tuned" / "prediction_consistency")
    combined = pd.read_parquet(root / "results" / "prediction_consistency" / "per_relation.parquet")
    assert list(combined.columns) == ["model", *shard.tables["per_relation"].columns]
    assert list(dict.fromkeys(combined["model"])) == ["tiny-base", "tiny-tuned"]
    mine = combined[combined["model"] == "tiny-tuned"].drop(columns="model").reset_index(drop=True)
    assert mine.equals(shard.tables["per_relation"])
    # run.json: statuses and the analyses' own timings; provenance records the job
    info = json.loads((root / "run.json").read_text())
    assert [j["status"] for j in info["jobs"]] == ["done"] * n
    assert all(j["analysis_s"] > 0 for j in info["jobs"])
    assert info["wall_s"] >= sum(j["analysis_s"] for j in info["jobs"])
    assert shard.provenance["study"]["model_key"] == "tiny-tuned"
    assert shard.provenance["study"]["role"] == "tuned"
    assert shard.provenance["study"]["seed"] == jobs_mod.job_seed(1, "prediction_consistency")


def test_resume_skips_finished_shards(tiny_study_files, tmp_path, count_jobs):
    raw = tiny_raw(tiny_study_files, analyses={a: ANALYSES[a] for a in (
        "prediction_consistency", "attention_knockout", "ffn_concepts")})
    first = Study.from_dict(raw).run(tmp_path, compare=False, report=False)
    assert first.ran == 6
    marker = tmp_path / "shards" / "tiny-base" / "ffn_concepts" / "result.json"
    before = marker.stat().st_mtime_ns
    count_jobs["jobs"].clear()
    count_jobs["loads"].clear()
    second = Study.from_dict(raw).run(tmp_path, compare=False, report=False)
    assert (second.ran, second.skipped) == (0, 6)
    assert count_jobs["jobs"] == [] and count_jobs["loads"] == []    # no model even loaded
    assert marker.stat().st_mtime_ns == before                       # never rewritten
    import shutil
    shutil.rmtree(tmp_path / "shards" / "tiny-tuned" / "attention_knockout")
    third = Study.from_dict(raw).run(tmp_path, compare=False, report=False)
    assert (third.ran, third.skipped) == (1, 5)
    assert count_jobs["jobs"] == ["tiny-tuned/attention_knockout"]
    assert count_jobs["loads"] == [tiny_study_files["tuned"]]


def test_interrupted_run_resumes_with_the_unfinished_jobs_only(tiny_study_files, tmp_path,
                                                               monkeypatch):
    import tunescope.study.local_executor as local
    raw = tiny_raw(tiny_study_files, analyses={a: ANALYSES[a] for a in (
        "prediction_consistency", "extraction_rate", "ffn_concepts")})
    real, ran = local.execute, []

    def interrupted(lm, job, *args):
        if len(ran) == 4:
            raise KeyboardInterrupt
        ran.append(str(job))
        return real(lm, job, *args)

    monkeypatch.setattr(local, "execute", interrupted)
    with pytest.raises(KeyboardInterrupt):
        Study.from_dict(raw).run(tmp_path, compare=False, report=False)
    assert len(ran) == 4
    # a shard left half-written by the interruption is cleaned up and rerun
    (tmp_path / "shards" / "tiny-tuned" / f"{TEMP_PREFIX}extraction_rate.abc123").mkdir(parents=True)
    monkeypatch.setattr(local, "execute", real)
    again = Study.from_dict(raw).run(tmp_path, compare=False, report=False)
    assert (again.ran, again.skipped) == (2, 4)
    assert [r["analysis"] for r in again.records if r["status"] == "done"] == \
        ["extraction_rate", "ffn_concepts"]
    assert not (tmp_path / "shards" / "tiny-tuned" / f"{TEMP_PREFIX}extraction_rate.abc123").exists()


def test_changed_spec_is_refused_naming_the_field(tiny_study_files, tmp_path):
    raw = tiny_raw(tiny_study_files, analyses={"attribution": {"max_new_tokens": 3}})
    Study.from_dict(raw).run(tmp_path / "x", compare=False, report=False)
    changed = tiny_raw(tiny_study_files, analyses={"attribution": {"max_new_tokens": 4}})
    with pytest.raises(TunescopeError) as e:
        Study.from_dict(changed).run(tmp_path / "x", compare=False, report=False)
    message = str(e.value)
    assert message == (f"spec differs from the run in {tmp_path / 'x'}: analyses.attribution."
                       "max_new_tokens 3 -> 4; use a new --out or --force")
    # the output directory and the executor are not part of the study
    same = Study.from_dict(tiny_raw(tiny_study_files, analyses={"attribution": {
        "max_new_tokens": 3}}, out=str(tmp_path / "elsewhere")))
    assert same.spec.fingerprint() == Study.from_dict(raw).spec.fingerprint()
    again = Study.from_dict(changed).run(tmp_path / "x", force=True, compare=False, report=False)
    assert again.ran == 2 and again.skipped == 0
    stored = json.loads((tmp_path / "x" / "spec.json").read_text())
    assert stored["spec"]["analyses"]["attribution"]["max_new_tokens"] == 4


def test_changed_dataset_file_is_refused(tiny_study_files, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"a": "It rains.", "b": "Rain is falling.", "label": 1}\n'
                     '{"a": "It rains.", "b": "The sun shines.", "label": 0}\n')
    raw = tiny_raw(tiny_study_files, analyses=["representation_consistency"])
    raw["datasets"]["pairs"] = {"source": str(pairs)}
    Study.from_dict(raw).run(tmp_path / "run", compare=False, report=False)
    pairs.write_text(pairs.read_text().replace("shines", "is shining"))
    with pytest.raises(TunescopeError, match=r"datasets\.pairs \(contents of .*pairs\.jsonl\)"):
        Study.from_dict(raw).run(tmp_path / "run", compare=False, report=False)


def test_results_are_deterministic_and_follow_the_study_seed(tiny_study_files, tmp_path):
    raw = tiny_raw(tiny_study_files, analyses={a: ANALYSES[a] for a in (
        "downstream_consistency", "attribution")})
    a = Study.from_dict(raw).run(tmp_path / "a", compare=False, report=False)
    b = Study.from_dict(raw).run(tmp_path / "b", compare=False, report=False)
    for analysis in ("downstream_consistency", "attribution"):
        for key in ("tiny-base", "tiny-tuned"):
            ra, rb = a.results[analysis][key], b.results[analysis][key]
            assert ra.tables.keys() == rb.tables.keys()
            assert all(ra.tables[t].equals(rb.tables[t]) for t in ra.tables)
    # a config field named seed takes the study seed unless given
    assert Study.from_dict(raw).spec.analyses["downstream_consistency"].seed == 1
    raw["analyses"] = {"downstream_consistency": {"seed": 7}}
    assert Study.from_dict(raw).spec.analyses["downstream_consistency"].seed == 7


def test_a_failing_job_is_recorded_and_retried(tiny_study_files, tmp_path):
    raw = tiny_raw(tiny_study_files, analyses={a: ANALYSES[a] for a in (
        "subject_enrichment", "ffn_concepts")})
    raw["tuned"] = [tiny_study_files["random"]]          # answers none of the capitals
    run = Study.from_dict(raw).run(tmp_path, compare=False, report=False)
    assert [(r["model"], r["analysis"], r["status"]) for r in run.records] == [
        ("tiny-base", "subject_enrichment", "done"), ("tiny-base", "ffn_concepts", "done"),
        ("tiny-random", "subject_enrichment", "failed"), ("tiny-random", "ffn_concepts", "done")]
    assert "answers none of the" in run.failed[0]["error"]
    again = Study.from_dict(raw).run(tmp_path, compare=False, report=False)
    assert (again.ran, again.skipped, len(again.failed)) == (0, 3, 1)


def test_unwritable_output_fails_before_any_model_loads(tiny_study_files, tmp_path, monkeypatch):
    monkeypatch.setattr(loading, "load", lambda *a, **k: pytest.fail("a model was loaded"))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    study = Study.from_dict(tiny_raw(tiny_study_files, analyses=["ffn_concepts"]))
    with pytest.raises(OutputError, match="not writable"):
        study.run(blocker / "run")


def test_refuses_a_directory_of_shards_without_a_spec(tiny_study_files, tmp_path):
    (tmp_path / "shards" / "x" / "ffn_concepts").mkdir(parents=True)
    (tmp_path / "shards" / "x" / "ffn_concepts" / "result.json").write_text("{}")
    study = Study.from_dict(tiny_raw(tiny_study_files, analyses=["ffn_concepts"]))
    with pytest.raises(TunescopeError, match="holds shards but no spec.json"):
        study.run(tmp_path, report=False)


@pytest.fixture
def fake_compare_and_report(monkeypatch):
    """Stand-ins for tunescope.compare / tunescope.report that record what they receive."""
    seen = {}

    def compare_study(results, base, *, n_boot=1000, seed=0):
        seen.setdefault("compare", []).append((sorted(results), base, seed))
        return pd.DataFrame({"model": [k for k in results if k != base], "metric": "m"})

    def write_report(path, study, models, results, comparisons, run_info=None, variants=None):
        seen["report"] = (study, models, results, comparisons, run_info)
        seen["variants"] = variants
        path.write_text("<html></html>")
        return path

    monkeypatch.setitem(sys.modules, "tunescope.compare",
                        types.SimpleNamespace(compare_study=compare_study))
    monkeypatch.setitem(sys.modules, "tunescope.report",
                        types.SimpleNamespace(write_report=write_report))
    return seen


def test_compare_and_report_get_the_agreed_arguments(tiny_study_files, tmp_path,
                                                     fake_compare_and_report, monkeypatch):
    raw = tiny_raw(tiny_study_files, analyses={"prediction_consistency": {},
                                               "ffn_concepts": ANALYSES["ffn_concepts"]})
    run = Study.from_dict(raw).run(tmp_path)
    seen = fake_compare_and_report
    assert run.report == tmp_path / "report.html" and run.report.read_text() == "<html></html>"
    assert seen["compare"] == [(["tiny-base", "tiny-tuned"], "tiny-base", 1)] * 2
    assert seen["variants"] == {}                       # one tuned model: nothing among them
    study, models, results, comparisons, info = seen["report"]
    assert study["analyses"]["ffn_concepts"]["rank"] == 4 and study["seed"] == 1
    assert [(m["key"], m["role"], m["spec"]) for m in models] == [
        ("tiny-base", "base", tiny_study_files["base"]),
        ("tiny-tuned", "tuned", tiny_study_files["tuned"])]
    assert models[1]["metadata"]["family"] == "gemma3_text"
    assert set(results) == {"prediction_consistency", "ffn_concepts"}
    assert set(results["ffn_concepts"]) == {"tiny-base", "tiny-tuned"}
    assert list(comparisons["ffn_concepts"]["model"]) == ["tiny-tuned"]
    assert pd.read_parquet(tmp_path / "compare" / "ffn_concepts.parquet")["model"].tolist() == \
        ["tiny-tuned"]
    assert [j["status"] for j in info["jobs"]] == ["done"] * 4 and info["wall_s"] > 0
    # rebuilding the report loads no model and hands the same results over
    monkeypatch.setattr(loading, "load", lambda *a, **k: pytest.fail("a model was loaded"))
    (tmp_path / "report.html").unlink()
    assert rebuild_report(tmp_path) == tmp_path / "report.html"
    assert seen["report"][2]["ffn_concepts"]["tiny-tuned"] == results["ffn_concepts"]["tiny-tuned"]
    with pytest.raises(TunescopeError, match="not a study run directory"):
        rebuild_report(tmp_path / "shards")


def test_objects_alive_before_the_run_are_frozen_only_while_it_runs(tiny_study_files, tmp_path,
                                                                      monkeypatch):
    """Study.run keeps what was alive when it started out of the collector's passes and gives
    it back at the end, also when the run fails; a dropped model is still collected."""
    import gc
    import weakref

    import tunescope.study.local_executor as local

    seen, models = [], []
    real_execute = jobs_mod.execute

    def execute(lm, job, *args):
        seen.append(gc.get_freeze_count())
        if not models or models[-1]() is not lm.model:
            models.append(weakref.ref(lm.model))
            lm.model.cycle = lm.model                  # freed only by the collector
        return real_execute(lm, job, *args)

    monkeypatch.setattr(local, "execute", execute)
    assert gc.get_freeze_count() == 0
    study = Study.from_dict(tiny_raw(tiny_study_files, analyses=["next_token_predictions"]))
    study.run(tmp_path / "run", compare=False, report=False)
    assert len(seen) == 2 and min(seen) > 0 and gc.get_freeze_count() == 0
    assert len(models) == 2 and all(m() is None for m in models)    # both models were freed

    def fail(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(local, "execute", fail)
    with pytest.raises(RuntimeError):
        study.run(tmp_path / "run2", compare=False, report=False)
    assert gc.get_freeze_count() == 0
