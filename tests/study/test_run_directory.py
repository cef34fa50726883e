"""Run directories that cannot be corrupted: one process at a time (an OS lock), only
tunescope's own files removed, every input checked before anything is written, dataset
fingerprints from the files the loaders read, one-line errors for file-system faults."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from study.test_study_run import tiny_raw, tiny_study_files  # noqa: F401 (fixture)
from tunescope.common.atomic import TEMP_PREFIX
from tunescope.common.lock import LOCK_NAME, RunDirectoryBusy, run_lock
from tunescope.errors import OutputError, TunescopeError
from tunescope.study import Study, rebuild_report
from tunescope.study.store import MANIFEST

SMALL = {"prediction_consistency": {}, "subject_enrichment": {"max_examples": 3}}


def small_raw(files, **extra):
    return tiny_raw(files, analyses=SMALL, **extra)


def tables(root: Path) -> dict:
    """Every combined table and comparison of a run directory, by relative path."""
    return {str(p.relative_to(root)): pd.read_parquet(p)
            for p in sorted(root.glob("results/*/*.parquet")) + sorted(root.glob("compare/*"))
            if p.suffix == ".parquet"}


# --- the lock --------------------------------------------------------------------------------
def test_second_process_is_refused_at_once_naming_directory_and_pid(tiny_study_files, tmp_path):
    root = tmp_path / "run"
    with run_lock(root):
        start = time.perf_counter()
        with pytest.raises(RunDirectoryBusy) as info:
            Study.from_dict(small_raw(tiny_study_files)).run(root, compare=False, report=False)
        assert time.perf_counter() - start < 30
    message = str(info.value)
    assert str(root) in message and f"PID {os.getpid()}" in message and "\n" not in message
    assert sorted(p.name for p in root.iterdir()) == [LOCK_NAME]      # nothing written
    Study.from_dict(small_raw(tiny_study_files)).run(root, compare=False, report=False)
    with run_lock(root):
        with pytest.raises(RunDirectoryBusy, match=f"PID {os.getpid()}"):
            rebuild_report(root)


def test_lock_of_a_killed_process_never_blocks(tiny_study_files, tmp_path):
    root = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from tunescope.common.lock import run_lock\n"
         "with run_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)",
         str(root)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunDirectoryBusy, match=f"PID {holder.pid}"):
            with run_lock(root):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    run = Study.from_dict(small_raw(tiny_study_files)).run(root, compare=False, report=False)
    assert run.ran == 4 and not run.failed


def _cli(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    return subprocess.Popen([sys.executable, "-m", "tunescope.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_concurrent_runs_one_directory(tiny_study_files, tmp_path):
    """Started at the same moment with different studies: exactly one runs, the other exits 2
    with one line; the directory then equals a single run of the winner's study."""
    studies = {}
    for n in (3, 5):
        raw = small_raw(tiny_study_files)
        raw["datasets"]["pararel"]["max_facts"] = n
        studies[n] = tmp_path / f"study{n}.yaml"
        studies[n].write_text(json.dumps(raw))
    root = tmp_path / "run"
    procs = {n: _cli(["run", str(studies[n]), "--out", str(root), "--no-report"], tmp_path)
             for n in studies}
    outcomes = {n: (p.wait(timeout=600), p.stderr.read()) for n, p in procs.items()}
    codes = sorted(rc for rc, _ in outcomes.values())
    assert codes == [0, 2], outcomes
    winner = next(n for n, (rc, _) in outcomes.items() if rc == 0)
    loser_err = next(err for rc, err in outcomes.values() if rc == 2)
    assert "in use by another tunescope process" in loser_err
    assert len(loser_err.strip().splitlines()) == 1 and "Traceback" not in loser_err
    spec = json.loads((root / "spec.json").read_text())
    assert spec["spec"]["datasets"]["pararel"]["max_facts"] == winner
    single = tmp_path / "single"
    Study.from_dict(json.loads(studies[winner].read_text())).run(single, report=False,
                                                                 compare=False)
    got, want = tables(root), tables(single)
    assert got.keys() == want.keys() and got
    for name in want:
        pd.testing.assert_frame_equal(got[name], want[name])


# --- ownership -------------------------------------------------------------------------------
FOREIGN = ["results/.gitignore", "results/.git/HEAD", "compare/.keep", ".report.html.notes",
           "notes.txt", "results/prediction_consistency/mine.csv", "shards/README"]


def _plant(root: Path) -> None:
    for name in FOREIGN:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"the user's {name}\n")


def test_foreign_files_survive_runs_and_force(tiny_study_files, tmp_path):
    root = tmp_path / "run"
    _plant(root)
    study = Study.from_dict(small_raw(tiny_study_files))
    study.run(root, report=True)
    for name in FOREIGN:
        assert (root / name).read_text() == f"the user's {name}\n", name
    assert (root / "results" / "prediction_consistency" / "per_relation.parquet").is_file()
    recorded = json.loads((root / MANIFEST).read_text())["files"]
    assert "compare/prediction_consistency.parquet" in recorded
    assert not any(name in recorded for name in FOREIGN)
    # --force starts tunescope's own files over and leaves the user's
    run = study.run(root, force=True, report=True)
    assert run.ran == 4
    for name in FOREIGN:
        assert (root / name).read_text() == f"the user's {name}\n", name
    # clearing leaves exactly the user's files (and the lock)
    from tunescope.study.store import RunStore
    RunStore(root).clear()
    left = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert left == sorted([*FOREIGN, LOCK_NAME])


def test_only_tunescope_temporary_names_are_cleaned(tiny_study_files, tmp_path):
    root = tmp_path / "run"
    study = Study.from_dict(small_raw(tiny_study_files))
    study.run(root, compare=False, report=False)
    debris = [root / f"{TEMP_PREFIX}spec.json.abc", root / "results" / f"{TEMP_PREFIX}x.y",
              root / "shards" / "tiny-base" / f"{TEMP_PREFIX}prediction_consistency.q"]
    for path in debris:
        path.mkdir(parents=True) if path.name.endswith(".q") else path.write_text("partial")
    keep = [root / ".spec.json.mine", root / "results" / ".hidden", root / "shards" / ".x"]
    for path in keep:
        path.write_text("mine")
    run = study.run(root, compare=False, report=False)
    assert run.ran == 0 and run.skipped == 4
    assert not any(p.exists() for p in debris)
    assert all(p.read_text() == "mine" for p in keep)


def test_stale_recorded_tables_are_removed_but_not_others(tiny_study_files, tmp_path):
    root = tmp_path / "run"
    study = Study.from_dict(small_raw(tiny_study_files))
    study.run(root, compare=False, report=False)
    from tunescope.study.store import RunStore
    store = RunStore(root)
    folder = root / "results" / "prediction_consistency"
    stale = folder / "old_table.parquet"
    store._record([stale])
    stale.write_bytes(b"old")
    other = folder / "users_table.parquet"
    other.write_bytes(b"mine")
    rebuild_report(root, compare=False)
    assert not stale.exists() and other.read_bytes() == b"mine"
    assert "results/prediction_consistency/old_table.parquet" not in store.recorded()


# --- checks before writing -------------------------------------------------------------------
def test_failed_check_writes_nothing_and_the_corrected_run_runs(tiny_study_files, tmp_path):
    root = tmp_path / "run"
    bad = small_raw(tiny_study_files)
    bad["datasets"]["pararel"]["relations"] = ["P366"]
    with pytest.raises(TunescopeError, match="P366"):
        Study.from_dict(bad).run(root, compare=False, report=False)
    assert not root.exists()
    run = Study.from_dict(small_raw(tiny_study_files)).run(root, compare=False, report=False)
    assert run.ran == 4


def test_broken_dataset_line_then_fixed_runs_without_force(tiny_study_files, tmp_path):
    pararel = tmp_path / "pararel"
    import shutil
    shutil.copytree(tiny_study_files["pararel"], pararel)
    facts = pararel / "tuples" / "P36.jsonl"
    good = facts.read_text()
    facts.write_text(good + "{not json\n")
    raw = small_raw(tiny_study_files)
    raw["datasets"]["pararel"]["source"] = str(pararel)
    root = tmp_path / "run"
    root.mkdir()
    with pytest.raises(TunescopeError, match="P36.jsonl"):
        Study.from_dict(raw).run(root, compare=False, report=False)
    assert list(root.iterdir()) == []
    facts.write_text(good)
    assert Study.from_dict(raw).run(root, compare=False, report=False).ran == 4


def test_run_directory_inside_the_dataset_folder_resumes(tiny_study_files, tmp_path):
    import shutil
    pararel = tmp_path / "pararel"
    shutil.copytree(tiny_study_files["pararel"], pararel)
    raw = small_raw(tiny_study_files)
    raw["datasets"]["pararel"]["source"] = str(pararel)
    root = pararel / "runs" / "first"
    Study.from_dict(raw).run(root, report=True)
    run = Study.from_dict(raw).run(root, report=True)
    assert run.ran == 0 and run.skipped == 4


def test_fingerprint_covers_the_files_read_and_only_them(tiny_study_files, tmp_path):
    import shutil

    from tunescope.study.dataset_entries import load_inputs
    pararel = tmp_path / "pararel"
    shutil.copytree(tiny_study_files["pararel"], pararel)
    entry = {"source": str(pararel), "relations": ["P36"], "max_facts": None, "sample": "random"}
    _, first = load_inputs({"pararel": entry}, ["pararel"])
    (pararel / "tuples" / "P999.jsonl").write_text('{"sub_label": "a", "obj_label": "b"}\n')
    (pararel / "notes.json").write_text("{}")
    _, unread = load_inputs({"pararel": entry}, ["pararel"])
    assert unread == first
    facts = pararel / "tuples" / "P36.jsonl"
    facts.write_text(facts.read_text().replace("Paris", "Lyon"))
    _, edited = load_inputs({"pararel": entry}, ["pararel"])
    assert edited["pararel"] != first["pararel"]


def test_layout_is_checked_before_any_walk(tmp_path):
    """A ParaRel source that is a big folder of something else fails at once."""
    from tunescope.study.dataset_entries import load_inputs
    big = tmp_path / "big"
    for i in range(200):
        (big / f"d{i}").mkdir(parents=True)
        (big / f"d{i}" / "x.json").write_text("{}")
    entry = {"source": str(big), "relations": None, "max_facts": None, "sample": "random"}
    start = time.perf_counter()
    with pytest.raises(TunescopeError):
        load_inputs({"pararel": entry}, ["pararel"])
    assert time.perf_counter() - start < 1.0


# --- file-system faults ----------------------------------------------------------------------
FAULTS = {"permission": (13, "Permission denied"), "read-only": (30, "Read-only file system"),
          "full disk": (28, "No space left on device"), "missing": (2, "No such file or directory")}
POINTS = {  # write point -> which path's write fails
    "study.yaml": lambda p: p.name == "study.yaml",
    "spec.json": lambda p: p.name == "spec.json",
    "manifest": lambda p: p.name == MANIFEST,
    "shard": None,                                    # a table of the second shard
    "combined table": lambda p: p.parent.parent.name == "results",
    "comparison": lambda p: p.parent.name == "compare",
    "report": None,                                   # report.html's temporary file
    "run.json": lambda p: p.name == "run.json",
}


def inject(monkeypatch, point: str, kind: str) -> None:
    """Make the write at ``point`` fail with the OSError of fault ``kind`` (as the kernel
    would raise it: errno, message, file name)."""
    import tunescope.report.page as page
    import tunescope.study.store as store_mod
    code, message = FAULTS[kind]
    if point == "shard":
        real = pd.DataFrame.to_parquet
        seen = []

        def to_parquet(self, path=None, *args, **kwargs):
            if path is not None and "shards" in Path(path).parts:
                seen.append(Path(path).parent.parent)
                if len(set(seen)) == 2:
                    raise OSError(code, message, str(path))
            return real(self, path, *args, **kwargs)
        monkeypatch.setattr(pd.DataFrame, "to_parquet", to_parquet)
    elif point == "report":
        def make_temp_file(parent, name=""):
            raise OSError(code, message, str(Path(parent) / name))
        monkeypatch.setattr(page, "make_temp_file", make_temp_file)
    else:
        real_write = store_mod.write_atomic

        def write_atomic(path, data):
            if POINTS[point](Path(path)):
                raise OSError(code, message, str(path))
            return real_write(path, data)
        monkeypatch.setattr(store_mod, "write_atomic", write_atomic)


@pytest.fixture(scope="module")
def reference_tables(tiny_study_files, tmp_path_factory):
    root = tmp_path_factory.mktemp("reference") / "run"
    Study.from_dict(small_raw(tiny_study_files)).run(root, report=True)
    return tables(root)


@pytest.mark.parametrize("kind", list(FAULTS))
@pytest.mark.parametrize("point", list(POINTS))
def test_fault_at_each_write_point(tiny_study_files, reference_tables, tmp_path, monkeypatch,
                                   point, kind):
    """One OutputError line naming the operation and the path; finished shards intact; the
    resumed run's tables equal an uninterrupted run's."""
    root = tmp_path / "run"
    study = Study.from_dict(small_raw(tiny_study_files))
    with monkeypatch.context() as patch:
        inject(patch, point, kind)
        with pytest.raises(OutputError) as info:
            study.run(root, report=True)
    message = str(info.value)
    assert "\n" not in message and "cannot" in message and FAULTS[kind][1] in message
    assert str(root) in message
    finished = {p.parent for p in root.glob("shards/*/*/result.json")}
    for shard in finished:            # every shard that looks finished is complete
        from tunescope.result import Result
        Result.load(shard)
    resumed = study.run(root, report=True)
    assert resumed.ran == 4 - len(finished) and not resumed.failed
    got = tables(root)
    assert got.keys() == reference_tables.keys()
    for name in got:
        pd.testing.assert_frame_equal(got[name], reference_tables[name])
    assert (root / "report.html").is_file()


@pytest.mark.parametrize("point", ["combined table", "comparison", "report", "run.json"])
def test_fault_in_report_rebuild(tiny_study_files, tmp_path, monkeypatch, point):
    root = tmp_path / "run"
    Study.from_dict(small_raw(tiny_study_files)).run(root, report=True)
    before = tables(root)
    with monkeypatch.context() as patch:
        inject(patch, point, "full disk")
        with pytest.raises(OutputError, match="No space left on device"):
            rebuild_report(root)
    assert len(list(root.glob("shards/*/*/result.json"))) == 4
    rebuild_report(root)
    after = tables(root)
    for name in before:
        pd.testing.assert_frame_equal(after[name], before[name])


def test_fault_through_the_cli_is_one_line_and_exit_2(tiny_study_files, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from tunescope.cli import app
    study_file = tmp_path / "study.yaml"
    study_file.write_text(json.dumps(small_raw(tiny_study_files)))
    inject(monkeypatch, "combined table", "read-only")
    result = CliRunner().invoke(app, ["run", str(study_file), "--out", str(tmp_path / "run")])
    assert isinstance(result.exception, OutputError)
    assert "Read-only file system" in str(result.exception)


def test_input_longer_than_the_context_is_refused_before_anything_is_written(
        tiny_study_files, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    rows = [{"a": f"Sentence {i}.", "b": f"Another sentence {i}.", "label": i % 2}
            for i in range(6)]
    rows[2]["a"] = "the quick brown fox " * 400              # 2,000 words; the models take 1,024
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    raw = tiny_raw(tiny_study_files, analyses={"representation_consistency": {}})
    raw["datasets"]["pairs"] = {"source": str(pairs)}
    root = tmp_path / "run"
    start = time.perf_counter()
    with pytest.raises(TunescopeError) as e:
        Study.from_dict(raw).run(root, compare=False, report=False)
    assert time.perf_counter() - start < 60
    message = str(e.value)
    assert message.startswith(f"{pairs}:3: field 'a': "), message
    assert "more than the context of model 'tiny-base' (1,024 tokens)" in message, message
    assert "\n" not in message and not root.exists()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="needs root to run a command as another user (setpriv)")
def test_unreadable_shard_folder_as_a_real_user_is_one_line(tiny_study_files, tmp_path):
    """Permissions are not enforced for root, so the command runs as 'nobody' (setpriv) on a
    copy of the study and its run directory that nobody may read and write, except for one
    shard folder (mode 000)."""
    import tempfile
    shared = Path(tempfile.mkdtemp(prefix="tunescope-perm-"))
    try:
        shared.chmod(0o777)
        files = {k: str(shutil.copytree(v, shared / Path(v).name)) if Path(v).is_dir() else v
                 for k, v in tiny_study_files.items()}
        root = shared / "run"
        study_file = shared / "study.yaml"
        study_file.write_text(json.dumps(small_raw(files)))
        Study.from_dict(small_raw(files)).run(root, compare=True, report=True)
        for path in [shared, *shared.rglob("*")]:
            path.chmod(0o777 if path.is_dir() else 0o666)
        locked = root / "shards" / "tiny-base"
        locked.chmod(0)
        before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
        env = {**os.environ, "HOME": str(shared), "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                     sys.executable, "-m", "tunescope"]
        for command in (["report", str(root)], ["run", str(study_file), "--out", str(root)]):
            done = subprocess.run(as_nobody + command, env=env, cwd=shared,
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == 2, (command, done.stdout, done.stderr)
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
            assert lines[0].startswith("tunescope: error: cannot ") and str(locked) in lines[0]
            assert "Permission denied" in lines[0], lines[0]
        locked.chmod(0o777)
        after = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
        assert {p: b for p, b in after.items() if p.name != LOCK_NAME} == \
            {p: b for p, b in before.items() if p.name != LOCK_NAME}      # nothing changed
    finally:
        for path in [shared, *shared.rglob("*")]:
            path.chmod(0o777) if path.is_dir() else None
        shutil.rmtree(shared)


def test_builtin_fingerprints_are_the_same_when_the_loaders_cached_their_data():
    """The built-in loaders keep what they parsed; a second study in the same process reads
    no file, and its input fingerprints must not change for that."""
    from tunescope.study.dataset_entries import load_inputs
    from tunescope.study.spec import from_yaml
    spec = from_yaml("base: gemma-3-270m\nanalyses: [representation_consistency, "
                     "downstream_consistency, attribution]\ndatasets: {pairs: {max_pairs: 12}, "
                     "task: {max_examples: 12}, instructions: {max_prompts: 2}}\n")
    kinds = {"pairs", "task", "instructions"}
    first = load_inputs(spec.datasets, kinds, 0)[1]
    second = load_inputs(spec.datasets, kinds, 0)[1]
    assert first == second and set(first) == kinds and len(set(first.values())) == 3
