"""Files and folders tunescope writes get the modes of the user's umask (0644/0755 under umask
022, 0600/0700 under 077), as ``open`` and ``mkdir`` give them: temporary files and folders
renamed into place included (tempfile's mkstemp/mkdtemp made them 0600/0700 whatever the
umask, so a run directory shared with colleagues was unreadable to them)."""

from __future__ import annotations

import os
import stat
import types
from pathlib import Path

import pandas as pd
import pytest

from study.test_study_run import tiny_raw, tiny_study_files  # noqa: F401 (a fixture)
from tunescope.common.atomic import (
    TEMP_PREFIX,
    make_temp_dir,
    make_temp_file,
    write_atomic,
)
from tunescope.labels.concept_labels import ChatCache
from tunescope.report import write_report
from tunescope.result import Result
from tunescope.study import Study


@pytest.fixture(params=[0o022, 0o077], ids=["umask022", "umask077"])
def umask(request):
    """The process's umask set to the parameter for the test (put back afterwards)."""
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def assert_umask_modes(root: Path, umask: int) -> None:
    """``root`` and everything under it: files 0o666 and folders 0o777, less the umask."""
    wrong = [f"{p.relative_to(root.parent)}: {mode(p):o}" for p in [root, *root.rglob("*")]
             if mode(p) != (0o777 if p.is_dir() else 0o666) & ~umask]
    assert not wrong, f"not the umask {umask:03o}'s modes: {wrong}"


def test_write_atomic_gives_the_umask_mode(tmp_path, umask):
    path = tmp_path / "new" / "spec.json"
    write_atomic(path, b"{}")
    assert path.read_bytes() == b"{}"
    assert mode(path) == 0o666 & ~umask and mode(path.parent) == 0o777 & ~umask
    path.chmod(0o600)  # an older file's mode does not carry over: the new file replaces it
    write_atomic(path, b"[]")
    assert path.read_bytes() == b"[]" and mode(path) == 0o666 & ~umask
    assert [p.name for p in path.parent.iterdir()] == ["spec.json"]


def test_temporary_files_and_folders_get_the_umask_mode(tmp_path, umask):
    folder = make_temp_dir(tmp_path, "recall")
    assert folder.is_dir() and folder.parent == tmp_path
    assert folder.name.startswith(f"{TEMP_PREFIX}recall.")
    assert mode(folder) == 0o777 & ~umask
    fd, file = make_temp_file(folder, "report.html")
    os.close(fd)
    assert file.name.startswith(f"{TEMP_PREFIX}report.html.") and file.stat().st_size == 0
    assert mode(file) == 0o666 & ~umask
    assert make_temp_dir(tmp_path, "recall") != folder  # a fresh name each time


def test_result_save_gives_the_umask_modes(tmp_path, umask):
    result = Result("demo", {"t": pd.DataFrame({"a": [1, 2]})}, summary={"n": 2})
    result.save(tmp_path / "out")
    result.save(tmp_path / "out")  # replacing an older Result
    assert Result.load(tmp_path / "out") == result
    assert_umask_modes(tmp_path / "out", umask)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_report_and_chat_cache_get_the_umask_mode(tmp_path, umask):
    report = write_report(tmp_path / "run" / "report.html", {}, [], {}, {})
    assert mode(report) == 0o666 & ~umask
    cache = ChatCache(tmp_path / "cache" / "labels.json")
    cache.put("m", "hello", 0, "world")
    cache.save()
    assert_umask_modes(tmp_path / "cache", umask)


def test_prepared_bundled_model_gets_the_umask_modes(tmp_path, monkeypatch, umask):
    """A bundled model is prepared in a temporary folder renamed into the cache; the debris of a
    killed preparation (today's temporary names and earlier versions' ``.<name>.*``) goes."""
    from tunescope.models import bundled

    model = bundled.BundledModel(name="fake", package="fake-gguf", gguf_packages=("fake-gguf",),
                                 no_deps=True, role="base", description="a fake")
    gguf = tmp_path / "fake.gguf"
    gguf.write_bytes(b"GGUF")

    def dequantise(gguf, out_dir):
        out_dir.mkdir()
        (out_dir / "model.safetensors").write_bytes(b"weights")
    monkeypatch.setattr(bundled, "_dequantise", dequantise)
    monkeypatch.setattr(bundled, "_installed", lambda dist: types.SimpleNamespace(version="1"))
    target = tmp_path / "models" / "fake"
    target.parent.mkdir()
    debris = [make_temp_dir(target.parent, "fake"), target.parent / ".fake.x1y2z3"]
    debris[1].mkdir()
    bundled._remove_debris(target)
    assert not [d for d in debris if d.exists()]
    bundled._prepare(model, [gguf], target, echo=lambda message: None)
    assert (target / bundled.MARKER).is_file()
    assert_umask_modes(target, umask)
    assert [p.name for p in target.parent.iterdir()] == ["fake"]


def test_every_file_and_folder_of_a_run_directory(tiny_study_files, tmp_path, umask):  # noqa: F811
    analyses = {"prediction_consistency": {}, "representation_consistency": {}}
    run = Study.from_dict(tiny_raw(tiny_study_files, analyses)).run(tmp_path / "run")
    assert not run.failed and run.report is not None
    root = tmp_path / "run"
    names = {p.name for p in root.iterdir()}
    assert {"study.yaml", "spec.json", "run.json", "report.html", "shards", "results",
            "compare"} <= names
    assert list(root.glob("compare/*.parquet")) and list(root.glob("results/*/*.parquet"))
    assert_umask_modes(root, umask)
