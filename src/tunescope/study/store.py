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

A finished shard is never rewritten: re-running the same study skips it. A run directory holds
one study: a spec whose fingerprint differs from the stored one is refused, naming the fields
that changed, unless the caller asks to start over.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import yaml

from tunescope.errors import DataError, OutputError, TunescopeError
from tunescope.atomic import write_atomic
from tunescope.result import Result, check_writable
from tunescope.study.spec import StudySpec, differences

FORMAT = "tunescope-study/1"
OWNED = ("study.yaml", "spec.json", "shards", "results", "compare", "run.json", "report.html")
"""What the store writes into a run directory (and removes when starting over)."""


def _replace_dir(tmp: Path, target: Path) -> None:
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


class RunStore:
    """Reads and writes one run directory ``root``."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    # --- paths ---------------------------------------------------------------------------
    def shard(self, model: str, analysis: str) -> Path:
        return self.root / "shards" / model / analysis

    def is_done(self, model: str, analysis: str) -> bool:
        """Whether the job's shard is complete (its result.json exists)."""
        return (self.shard(model, analysis) / "result.json").is_file()

    @property
    def report_path(self) -> Path:
        return self.root / "report.html"

    # --- the spec ------------------------------------------------------------------------
    def stored_spec(self) -> dict | None:
        """The contents of spec.json, or None for a directory that holds no study yet."""
        path = self.root / "spec.json"
        if not path.is_file():
            return None
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise DataError(f"cannot read the run's spec: {e}", path=str(path)) from None
        if not isinstance(stored, dict) or stored.get("format") != FORMAT:
            raise DataError(f"not a tunescope study spec (format "
                            f"{stored.get('format') if isinstance(stored, dict) else None!r})",
                            path=str(path))
        return stored

    def prepare(self, spec: StudySpec, inputs: dict, force: bool = False) -> None:
        """Make the directory hold ``spec``: check it is writable, refuse a different study
        already there (unless ``force``: then remove what the store owns and start over),
        write study.yaml and spec.json before any job runs."""
        check_writable(self.root)
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
        if stored is None and (self.root / "shards").exists() and not force:
            raise TunescopeError(f"{self.root} holds shards but no spec.json; use a new --out "
                                 "or --force")
        if force:
            self.clear()
        self._clean_partial()
        record = {"format": FORMAT, "fingerprint": fingerprint, "spec": spec.to_dict(),
                  "numbers": spec.numbers(), "inputs": inputs}
        try:
            write_atomic(self.root / "study.yaml", (
                f"# tunescope study, resolved (fingerprint {fingerprint}); rerun with\n"
                f"#   tunescope run {self.root / 'study.yaml'}\n".encode()
                + yaml.safe_dump(spec.to_dict(), sort_keys=False).encode()))
            write_atomic(self.root / "spec.json", json.dumps(record, indent=2).encode())
        except OSError as e:
            raise OutputError(f"cannot write to {self.root}: {e.strerror or e}") from None

    def clear(self) -> None:
        """Remove everything the store owns from the run directory (nothing else)."""
        for name in OWNED:
            path = self.root / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()

    def _clean_partial(self) -> None:
        """Remove the temporary files and directories of writes that were interrupted (shards,
        combined tables, comparisons, the store's own files)."""
        leftovers = [*self.root.glob("shards/*/.*"), *self.root.glob("results/.*"),
                     *self.root.glob("compare/.*"),
                     *(p for name in OWNED for p in self.root.glob(f".{name}.*"))]
        for tmp in leftovers:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)

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
        """results/<analysis>/<table>.parquet: each table of every model, "model" first."""
        target = self.root / "results" / analysis
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{analysis}.", dir=target.parent))
        try:
            names = list(dict.fromkeys(t for r in results.values() for t in r.tables))
            for name in names:
                parts = [r.tables[name].assign(model=key)[["model", *r.tables[name].columns]]
                         for key, r in results.items() if name in r.tables]
                pd.concat(parts, ignore_index=True).to_parquet(tmp / f"{name}.parquet",
                                                               index=False)
            _replace_dir(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target

    def write_comparison(self, analysis: str, table: pd.DataFrame) -> Path:
        path = self.root / "compare" / f"{analysis}.parquet"
        write_atomic(path, table.reset_index(drop=True).to_parquet(index=False))
        return path

    def write_run_info(self, info: dict) -> None:
        write_atomic(self.root / "run.json", json.dumps(info, indent=2, default=str).encode())

    def run_info(self) -> dict | None:
        path = self.root / "run.json"
        try:
            return json.loads(path.read_text()) if path.is_file() else None
        except (OSError, ValueError):
            return None
