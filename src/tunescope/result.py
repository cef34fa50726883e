"""The :class:`Result` of an analysis: tidy tables, a summary, and provenance.

On disk a Result is a directory::

    tables/<name>.parquet   one file per table (long/tidy form)
    summary.json            headline numbers
    provenance.json         model, config, dataset fingerprint, versions, seed, timings
    result.json             what the directory holds (written last: its presence means complete)

``save`` writes into a temporary sibling directory and renames it into place, so a reader never
sees a half-written Result.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from tunescope.common.atomic import make_temp_dir, replace_dir, temp_prefix
from tunescope.errors import DataError, OutputError

FORMAT = "tunescope-result/1"


def package_versions() -> dict[str, str]:
    """Versions of tunescope and the libraries that shape its numbers."""
    from importlib.metadata import PackageNotFoundError, version
    out = {"python": platform.python_version()}
    for name in ("tunescope", "torch", "transformers", "numpy", "pandas"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def fingerprint(obj) -> str:
    """A short stable hash of any JSON-serialisable object (e.g. a dataset's records)."""
    text = json.dumps(obj, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _jsonable(value):
    """Plain JSON values for numpy/pandas scalars; non-finite floats become None."""
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def check_writable(directory: str | os.PathLike) -> Path:
    """Create ``directory`` if needed and prove it writable, before any long work starts."""
    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=temp_prefix("write-test")):
            pass
    except OSError as e:
        raise OutputError(f"output directory {path} is not writable: {e.strerror or e}") from None
    return path


@dataclass
class Result:
    """What one analysis produced for one model on one dataset.

    Attributes:
        analysis: the registered analysis name.
        tables: named pandas DataFrames in tidy form.
        summary: headline numbers (JSON-ready). ``summary["flags"]``, when present, is a list
            of one-line warnings about degenerate figures (a constant predictor, a layer where
            all inputs are equal, a candidate set of one): the report shows them beside the
            figures instead of ranking those numbers (:func:`flags`).
        provenance: model metadata, config, dataset fingerprint, package versions, seed,
            timings (seconds).
    """

    analysis: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)

    def __post_init__(self):
        self.summary = _jsonable(self.summary)
        self.provenance = _jsonable(self.provenance)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Result):
            return NotImplemented
        return (self.analysis == other.analysis and self.summary == other.summary
                and self.provenance == other.provenance
                and self.tables.keys() == other.tables.keys()
                and all(self.tables[k].equals(other.tables[k])
                        and list(self.tables[k].dtypes) == list(other.tables[k].dtypes)
                        for k in self.tables))

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}: {v.shape[0]}x{v.shape[1]}" for k, v in self.tables.items())
        return f"Result({self.analysis!r}, tables={{{shapes}}}, summary={self.summary})"

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the Result to ``directory`` atomically (replacing an older Result there)."""
        target = Path(directory)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = make_temp_dir(target.parent, target.name)  # the umask's mode
        except OSError as e:
            raise OutputError(f"cannot write results to {target}: {e.strerror or e}") from None
        try:
            (tmp / "tables").mkdir()
            for name, table in self.tables.items():
                table.reset_index(drop=True).to_parquet(tmp / "tables" / f"{name}.parquet",
                                                        index=False)
            (tmp / "summary.json").write_text(json.dumps(self.summary, indent=2))
            (tmp / "provenance.json").write_text(json.dumps(self.provenance, indent=2))
            (tmp / "result.json").write_text(json.dumps(
                {"format": FORMAT, "analysis": self.analysis, "tables": list(self.tables)}))
            replace_dir(tmp, target)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise OutputError(f"cannot write results to {target}: {e.strerror or e}") from None
        return target

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "Result":
        """Read a Result written by :meth:`save`."""
        path = Path(directory)
        marker = path / "result.json"
        if not marker.is_file():
            raise DataError("not a complete tunescope result (no result.json)", path=str(path))
        try:
            meta = json.loads(marker.read_text())
            if meta.get("format") != FORMAT:
                raise DataError(f"unknown result format {meta.get('format')!r}", path=str(marker))
            tables = {name: pd.read_parquet(path / "tables" / f"{name}.parquet")
                      for name in meta["tables"]}
            summary = json.loads((path / "summary.json").read_text())
            provenance = json.loads((path / "provenance.json").read_text())
        except (OSError, ValueError, KeyError) as e:
            raise DataError(f"cannot read result: {e}", path=str(path)) from None
        return cls(meta["analysis"], tables, summary, provenance)


def flags(result: "Result") -> list[str]:
    """The Result's warnings about degenerate figures (``summary["flags"]``; [] when none)."""
    value = result.summary.get("flags") or []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def provenance(lm, config, dataset: dict, seed: int | None = None,
               timings: dict | None = None) -> dict:
    """The provenance every analysis records: model metadata, config (a dataclass), dataset
    description (``{"kind", "name", "fingerprint", "size", ...}``), versions, seed, timings (s)."""
    from dataclasses import asdict, is_dataclass

    return {"model": lm.metadata, "config": asdict(config) if is_dataclass(config) else config,
            "dataset": dataset, "versions": package_versions(), "seed": seed,
            "timings": timings or {}}
