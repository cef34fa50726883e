"""The run directory of a study: the resolved spec, one shard per finished job, combined tables.

Layout (see DESIGN.md)::

    <run>/study.yaml                       resolved spec (human-readable), written before any job
    <run>/spec.json                        {"format", "fingerprint", "spec", "numbers", "inputs"}
    <run>/shards/<model_key>/<analysis>/   one finished job = a Result directory (Result.save:
                                           temp dir then rename; result.json marks it complete)
    <run>/results/<analysis>/<table>.parquet   every model's rows, column "model" first
    <run>/compare/<analysis>.parquet       base-vs-tuned comparison tables
    <run>/run.json                         timings and job statuses of the last run
    <run>/report.html
    <run>/.tunescope.lock                  held by the one process working in the directory
    <run>/.tunescope-files.json            the combined tables and comparisons written so far

A finished shard is never rewritten: re-running the same study skips it. A run directory holds
one study: a spec whose fingerprint differs from the stored one is refused, naming the fields
that changed, unless the caller asks to start over.

The store removes only what it wrote: its files above, complete shards (the files their
result.json lists), the tables and comparisons its manifest records, and names that start with
tunescope's temporary prefix. A user's file anywhere in the directory survives every run and
``--force``; so does the folder that holds it. Every file-system error while writing becomes one
:class:`OutputError` line naming the operation and the path.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pandas as pd
import yaml

from tunescope.common.atomic import TEMP_PREFIX, fault, write_atomic
from tunescope.data.files import format_document
from tunescope.errors import OutputError, TunescopeError
from tunescope.result import Result
from tunescope.study.spec import StudySpec, differences

FORMAT = "tunescope-study/1"
FILES = ("study.yaml", "spec.json", "run.json", "report.html")
"""The store's own files at the top of a run directory."""
MANIFEST = ".tunescope-files.json"
"""The store's record of the combined tables and comparisons it wrote (paths relative to the
run directory), written before each of them; with --force only recorded files are removed."""
MANIFEST_FORMAT = "tunescope-files/1"


def _remove(path: Path) -> None:
    """Remove a file or a whole (temporary) directory."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _rmdir_empty(path: Path) -> None:
    """Remove ``path`` when it is an empty directory (a folder holding a user's file stays)."""
    try:
        path.rmdir()
    except OSError:
        pass


class RunStore:
    """Reads and writes one run directory ``root``."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    # --- paths ---------------------------------------------------------------------------
    def shard(self, model: str, analysis: str) -> Path:
        return self.root / "shards" / model / analysis

    def is_done(self, model: str, analysis: str) -> bool:
        """Whether the job's shard is complete (its result.json exists). A shard folder that
        cannot be searched (permissions) is an :class:`OutputError`, not a missing shard."""
        path = self.shard(model, analysis) / "result.json"
        try:
            return stat.S_ISREG(path.stat().st_mode)
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as e:
            raise OutputError(f"cannot read {path}: {e.strerror or e}") from None

    @property
    def report_path(self) -> Path:
        return self.root / "report.html"

    # --- the spec ------------------------------------------------------------------------
    def stored_spec(self) -> dict | None:
        """The contents of spec.json, or None for a directory that holds no study yet."""
        return format_document(self.root / "spec.json", "study spec", FORMAT)

    def prepare(self, spec: StudySpec, inputs: dict, force: bool = False) -> None:
        """Make the directory hold ``spec`` (call it holding the run's lock): refuse a different
        study already there (unless ``force``: then remove the store's own files, and nothing
        else, and start over), remove what interrupted writes left, and write study.yaml and
        spec.json before any job runs."""
        stored = self.stored_spec()
        fingerprint = spec.fingerprint(inputs)
        if stored is not None and stored.get("fingerprint") != fingerprint and not force:
            changes = differences(stored.get("numbers", {}), spec.numbers())
            changes += [f"datasets.{k} (contents of {spec.datasets[k]['source']})"
                        for k in inputs if k in stored.get("inputs", {})
                        and stored["inputs"][k] != inputs[k]]
            shown = "; ".join(changes[:4]) + (f"; and {len(changes) - 4} more"
                                              if len(changes) > 4 else "")
            raise TunescopeError(f"spec differs from the run in {self.root}: "
                                 f"{shown or 'fingerprint changed'}; use a new --out or --force")
        if stored is None and self.finished_shards() and not force:
            raise TunescopeError(f"{self.root} holds shards but no spec.json; use a new --out "
                                 "or --force")
        if force:
            self.clear()
        self._clean_partial()
        record = {"format": FORMAT, "fingerprint": fingerprint, "spec": spec.to_dict(),
                  "numbers": spec.numbers(), "inputs": inputs}
        with fault("write", self.root):
            write_atomic(self.root / "study.yaml", (
                f"# tunescope study, resolved (fingerprint {fingerprint}); rerun with\n"
                f"#   tunescope run {self.root / 'study.yaml'}\n".encode()
                + yaml.safe_dump(spec.to_dict(), sort_keys=False).encode()))
            write_atomic(self.root / "spec.json", json.dumps(record, indent=2).encode())

    # --- what the store owns -------------------------------------------------------------
    def finished_shards(self) -> list[Path]:
        """The shard directories that hold a complete Result (``shards/<model>/<analysis>``)."""
        with fault("read", self.root / "shards"):
            return sorted(p.parent for p in self.root.glob("shards/*/*/result.json"))

    def recorded(self) -> list[str]:
        """The files the manifest lists (relative paths), [] when there is none."""
        path = self.root / MANIFEST
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError):
            return []
        files = data.get("files") if isinstance(data, dict) else None
        return [f for f in files if isinstance(f, str)] if isinstance(files, list) else []

    def _record(self, paths: list[Path]) -> None:
        """Add ``paths`` (inside the run directory) to the manifest before they are written."""
        known = self.recorded()
        new = [str(p.relative_to(self.root)) for p in paths]
        if all(n in known for n in new):
            return
        files = sorted(set(known) | set(new))
        with fault("write", self.root / MANIFEST):
            write_atomic(self.root / MANIFEST, json.dumps(
                {"format": MANIFEST_FORMAT, "files": files}, indent=1).encode())

    def _forget(self, relative: list[str]) -> None:
        known = self.recorded()
        kept = [f for f in known if f not in set(relative)]
        if kept != known:
            with fault("write", self.root / MANIFEST):
                write_atomic(self.root / MANIFEST, json.dumps(
                    {"format": MANIFEST_FORMAT, "files": kept}, indent=1).encode())

    def clear(self) -> None:
        """Remove the store's own files (its top-level files, complete shards, recorded tables
        and comparisons, temporary names) and then the folders they leave empty; a file
        tunescope did not write stays where it is, and so does its folder."""
        with fault("remove files from", self.root):
            for name in FILES:
                path = self.root / name
                if path.is_file():
                    path.unlink()
            for shard in self.finished_shards():
                _remove_result(shard)
                _rmdir_empty(shard.parent)
            for relative in self.recorded():
                path = self.root / relative
                if path.is_file() and path.resolve().is_relative_to(self.root.resolve()):
                    path.unlink()
                    _rmdir_empty(path.parent)
            self._clean_partial()
            for folder in ("shards", "results", "compare"):
                _rmdir_empty(self.root / folder)
            (self.root / MANIFEST).unlink(missing_ok=True)

    def _clean_partial(self) -> None:
        """Remove the temporary files and directories of writes that were interrupted (only
        names with tunescope's temporary prefix: under the run's lock none is a live write)."""
        patterns = ["", "results/", "results/*/", "compare/", "shards/", "shards/*/"]
        with fault("clean up in", self.root):
            for pattern in patterns:
                for tmp in self.root.glob(f"{pattern}{TEMP_PREFIX}*"):
                    _remove(tmp)

    # --- shards and combined tables ------------------------------------------------------
    def save(self, model: str, analysis: str, result: Result) -> Path:
        return result.save(self.shard(model, analysis))

    def provenance(self, model: str, analysis: str) -> dict:
        """A finished shard's provenance (without reading its tables)."""
        try:
            return json.loads((self.shard(model, analysis) / "provenance.json").read_text())
        except (OSError, ValueError):
            return {}

    def load(self, model: str, analysis: str) -> Result:
        return Result.load(self.shard(model, analysis))

    def results(self, models: list[str], analyses: list[str]) -> dict[str, dict[str, Result]]:
        """``{analysis: {model_key: Result}}`` of every finished shard."""
        return {a: {m: self.load(m, a) for m in models if self.is_done(m, a)} for a in analyses}

    def write_combined(self, analysis: str, results: dict[str, Result]) -> Path:
        """results/<analysis>/<table>.parquet: each table of every model, "model" first (each
        file written atomically; tables this store wrote earlier that no longer exist are
        removed, any other file in the folder stays)."""
        target = self.root / "results" / analysis
        names = list(dict.fromkeys(t for r in results.values() for t in r.tables))
        paths = [target / f"{name}.parquet" for name in names]
        self._record(paths)
        for name, path in zip(names, paths):
            parts = [r.tables[name].assign(model=key)[["model", *r.tables[name].columns]]
                     for key, r in results.items() if name in r.tables]
            data = pd.concat(parts, ignore_index=True).to_parquet(index=False)
            with fault("write", path):
                write_atomic(path, data)
        current = {str(p.relative_to(self.root)) for p in paths}
        prefix = str(target.relative_to(self.root)) + os.sep
        stale = [f for f in self.recorded() if f.startswith(prefix) and f not in current]
        with fault("remove", target):
            for relative in stale:
                (self.root / relative).unlink(missing_ok=True)
        self._forget(stale)
        return target

    def write_comparison(self, analysis: str, table: pd.DataFrame) -> Path:
        path = self.root / "compare" / f"{analysis}.parquet"
        self._record([path])
        data = table.reset_index(drop=True).to_parquet(index=False)
        with fault("write", path):
            write_atomic(path, data)
        return path

    def write_run_info(self, info: dict) -> None:
        path = self.root / "run.json"
        with fault("write", path):
            write_atomic(path, json.dumps(info, indent=2, default=str).encode())

    def run_info(self) -> dict | None:
        path = self.root / "run.json"
        try:
            return json.loads(path.read_text()) if path.is_file() else None
        except (OSError, ValueError):
            return None


RESULT_FILES = ("result.json", "summary.json", "provenance.json")
"""The files :meth:`Result.save` writes beside its ``tables/<name>.parquet``."""


def _remove_result(directory: Path) -> None:
    """Remove the files of the Result saved in ``directory`` (its tables as result.json lists
    them), then the folders left empty."""
    try:
        tables = json.loads((directory / "result.json").read_text()).get("tables", [])
    except (OSError, ValueError, AttributeError):
        tables = []
    for name in tables if isinstance(tables, list) else []:
        if isinstance(name, str) and "/" not in name and name not in ("", ".", ".."):
            (directory / "tables" / f"{name}.parquet").unlink(missing_ok=True)
    for name in RESULT_FILES:
        (directory / name).unlink(missing_ok=True)
    _rmdir_empty(directory / "tables")
    _rmdir_empty(directory)
