"""Interrupted runs lose nothing: ``tunescope run`` killed with SIGKILL at five points, resumed,
gives tables equal to an uninterrupted run, and no file is left that looks complete but is not.

The kills come from tests/interrupt_driver.py (a real SIGKILL of the CLI process at a named
point). Points: during model preparation (integration: a bundled model prepared into an empty
cache), mid-shard, between shards, while combining, while writing the report.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from tiny import tiny_trained_lm

from study.test_study_run import save_lm, write_pararel
from tunescope.common.lock import LOCK_NAME
from tunescope.result import Result
from tunescope.study.store import MANIFEST

DRIVER = Path(__file__).parents[1] / "interrupt_driver.py"
ANALYSES = {"prediction_consistency": {},
            "representation_consistency": {},
            "attention_knockout": {"max_examples": 3, "window": 3}}


def tunescope_run(point: str, study: Path, out: Path, env: dict | None = None
                  ) -> subprocess.CompletedProcess:
    environment = {**os.environ, "TUNESCOPE_PROGRESS": "0", **(env or {})}
    return subprocess.run([sys.executable, str(DRIVER), point, "run", str(study), "--out",
                           str(out)], capture_output=True, text=True, env=environment,
                          timeout=600)


def tables(run: Path) -> dict[str, pd.DataFrame]:
    """Every combined and comparison table of a finished run, by relative path."""
    found = {str(p.relative_to(run)): pd.read_parquet(p)
             for p in sorted((run / "results").glob("*/*.parquet"))}
    found.update({str(p.relative_to(run)): pd.read_parquet(p)
                  for p in sorted((run / "compare").glob("*.parquet"))})
    return found


def assert_nothing_looks_complete_but_is_not(run: Path) -> None:
    """Every shard with a result.json loads whole; visible tables read; a report is whole."""
    for marker in (run / "shards").glob("*/*/result.json"):
        Result.load(marker.parent)  # raises if any table or JSON is missing or torn
    for table in list((run / "results").glob("*/*.parquet")) + list(
            (run / "compare").glob("*.parquet")):
        pd.read_parquet(table)
    report = run / "report.html"
    if report.exists():
        assert report.read_text().rstrip().endswith("</html>")
    for name in ("spec.json", "run.json"):
        if (run / name).exists():
            json.loads((run / name).read_text())


def assert_same_tables(run: Path, reference: dict[str, pd.DataFrame]) -> None:
    got = tables(run)
    assert got.keys() == reference.keys()
    for name, frame in reference.items():
        pd.testing.assert_frame_equal(got[name], frame, check_exact=True, obj=name)


@pytest.fixture(scope="module")
def study_file(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("interrupt")
    study = {"base": save_lm(tiny_trained_lm("llama"), root / "tiny-base"),
             "tuned": [save_lm(tiny_trained_lm("gemma3"), root / "tiny-tuned")],
             "analyses": ANALYSES,
             "datasets": {"pararel": {"source": write_pararel(root / "pararel")},
                          "pairs": {"max_pairs": 12}},
             "seed": 0}
    path = root / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


@pytest.fixture(scope="module")
def reference(study_file, tmp_path_factory) -> dict[str, pd.DataFrame]:
    out = tmp_path_factory.mktemp("reference") / "run"
    done = tunescope_run("none", study_file, out)
    assert done.returncode == 0, done.stderr
    found = tables(out)
    assert len(found) >= 2 * len(ANALYSES)  # several tables per analysis + comparisons
    return found


@pytest.mark.parametrize("point", ["mid-shard", "between-shards", "combine", "report"])
def test_killed_run_resumes_to_the_same_tables(point, study_file, reference, tmp_path):
    out = tmp_path / "run"
    killed = tunescope_run(point, study_file, out)
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr[-2000:])
    assert_nothing_looks_complete_but_is_not(out)
    shards_before = {p.parent.relative_to(out) for p in (out / "shards").glob("*/*/result.json")}
    if point == "mid-shard":
        assert not shards_before
    if point == "between-shards":
        assert len(shards_before) == 1

    resumed = tunescope_run("none", study_file, out)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_nothing_looks_complete_but_is_not(out)
    assert_same_tables(out, reference)
    runinfo = json.loads((out / "run.json").read_text())
    statuses = {(j["model"], j["analysis"]): j["status"] for j in runinfo["jobs"]}
    skipped = {Path("shards") / "/".join(k) for k, s in statuses.items() if s == "skipped"}
    assert {Path("shards") / p.relative_to("shards") for p in shards_before} == skipped
    assert sum(s == "done" for s in statuses.values()) == 2 * len(ANALYSES) - len(shards_before)
    assert not [p for p in out.rglob(".*") if p.name not in (".", "..", LOCK_NAME, MANIFEST)], \
        "temporary files left"


def test_full_disk_stops_with_one_line_and_keeps_finished_shards(study_file, reference, tmp_path):
    out = tmp_path / "run"
    full = tunescope_run("disk-full", study_file, out)
    assert full.returncode == 2
    lines = full.stderr.strip().splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0], full.stderr[-2000:]
    assert lines[0].startswith("tunescope: error: cannot write results to ")
    finished = list((out / "shards").glob("*/*/result.json"))
    assert len(finished) == 1  # the shard written before the disk filled up
    assert_nothing_looks_complete_but_is_not(out)
    assert not [p for p in (out / "shards").rglob(".*")], "temporary files left"
    assert not (out / "report.html").exists()

    resumed = tunescope_run("none", study_file, out)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_same_tables(out, reference)


@pytest.mark.integration
def test_killed_during_model_preparation(tmp_path, study_file, reference):
    """A bundled model killed mid-preparation into an empty cache is not taken as prepared; the
    resumed run prepares it again and its numbers equal those from the normal cache."""
    from tunescope.models import bundled

    bundled.gguf_parts("smollm2-135m-instruct")  # the package, not the prepared cache
    study = yaml.safe_load(study_file.read_text())
    study["base"] = "smollm2-135m-instruct"
    study["analyses"] = {"prediction_consistency": {}}
    study["datasets"]["pararel"] = {"relations": ["P36"], "max_facts": 4}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))

    expected_out = tmp_path / "expected"
    assert tunescope_run("none", path, expected_out).returncode == 0
    expected = tables(expected_out)

    cache = tmp_path / "cache"
    out = tmp_path / "run"
    killed = tunescope_run("prepare", path, out, env={"TUNESCOPE_CACHE": str(cache)})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    models = cache / "models"
    assert not (models / "smollm2-135m-instruct").exists()  # only its temporary directory
    assert not list((out / "shards").glob("*/*/result.json"))

    resumed = tunescope_run("none", path, out, env={"TUNESCOPE_CACHE": str(cache)})
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (models / "smollm2-135m-instruct" / bundled.MARKER).is_file()
    # the killed preparation's temporary directory is gone (the lock file stays)
    assert [p.name for p in models.iterdir() if p.is_dir()] == ["smollm2-135m-instruct"]
    assert_same_tables(out, expected)
