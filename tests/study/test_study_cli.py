"""`tunescope run` and `tunescope report`: exit codes, one-line errors, resume from the CLI."""

import subprocess
import sys

from study.test_study_run import tiny_study_files  # noqa: F401 - the fixture


def tunescope(*args):
    return subprocess.run([sys.executable, "-m", "tunescope.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


def one_error_line(done, message):
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tunescope: error: "), done.stderr
    assert message in lines[0], lines[0]


def test_study_errors_exit_2_with_one_line(tmp_path):
    bad = tmp_path / "study.yaml"
    bad.write_text("base: gemma-3-270m\nanalyses: [recall\n")
    one_error_line(tunescope("run", bad), f"{bad}:3: malformed YAML")
    one_error_line(tunescope("run", tmp_path / "missing.yaml"), "no such study file")
    one_error_line(tunescope("run", "--base", "llama-99b"), "unknown model 'llama-99b'")
    one_error_line(tunescope("run", "--analyses", "recall,nope"),
                   "unknown analysis 'nope'; valid: groups consistency, recall")
    one_error_line(tunescope("run", "--set", "analyses.recall.windw=3"),
                   "has no parameter 'windw'")
    one_error_line(tunescope("report", tmp_path), "is not a study run directory")


def test_dry_run_prints_the_resolved_default_study(tmp_path):
    done = tunescope("run", "--dry-run", "--out", tmp_path / "x")
    assert done.returncode == 0, done.stderr
    assert "base:\n  spec: gemma-3-270m" in done.stdout
    assert f"30 jobs (0 finished in {tmp_path / 'x'}, 30 to run)" in done.stdout
    assert "tuned:\n- spec: gemma-3-270m-sft" in done.stdout
    assert not (tmp_path / "x").exists()


def test_run_resume_and_changed_spec_from_the_cli(tiny_study_files, tmp_path):  # noqa: F811
    f = tiny_study_files
    args = ["run", "--base", f["base"], "--tuned", f["tuned"], "--analyses", "ffn_concepts",
            "--set", "analyses.ffn_concepts={rank: 4, top_words: 5}",
            "--set", "datasets.vocabulary.size=60", "--out", tmp_path / "run", "--no-report"]
    done = tunescope(*args)
    assert done.returncode == 0, done.stderr
    assert "study summary" in done.stdout and "top-10 var." in done.stdout
    assert "2 jobs run, 0 already finished, 0 failed" in done.stdout
    again = tunescope(*args)
    assert again.returncode == 0 and "0 jobs run, 2 already finished" in again.stdout
    changed = [a if a != "datasets.vocabulary.size=60" else "datasets.vocabulary.size=61"
               for a in args]
    one_error_line(tunescope(*changed), f"spec differs from the run in {tmp_path / 'run'}: "
                   "datasets.vocabulary.size 60 -> 61; use a new --out or --force")
    forced = tunescope(*changed, "--force")
    assert forced.returncode == 0 and "2 jobs run" in forced.stdout
    # from the resolved study.yaml the run directory holds: the same study, resumed
    resumed = tunescope("run", tmp_path / "run" / "study.yaml", "--no-report")
    assert resumed.returncode == 0 and "0 jobs run, 2 already finished" in resumed.stdout


def test_a_failed_job_exits_1(tiny_study_files, tmp_path):  # noqa: F811
    f = tiny_study_files
    done = tunescope("run", "--base", f["base"], "--tuned", f["random"], "--analyses",
                     "subject_enrichment", "--set", "datasets.pararel.source=" + f["pararel"],
                     "--set", "analyses.subject_enrichment.max_examples=2", "--out",
                     tmp_path, "--no-report")
    assert done.returncode == 1
    assert "1 job(s) failed" in done.stderr and "Traceback" not in done.stderr
    assert "failed" in done.stdout
