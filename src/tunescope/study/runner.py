"""Running a study: plan jobs, skip finished shards, execute the rest, combine, compare, report.

    study = Study(base="gemma-3-270m", tuned=["smollm2-135m-instruct"], analyses=["recall"])
    run = study.run("runs/x")          # resumes when runs/x already holds this study
    run.report                         # runs/x/report.html
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from pathlib import Path

from tunescope.common.lock import run_lock
from tunescope.common.progress import progress
from tunescope.errors import TunescopeError
from tunescope.result import Result
from tunescope.study import dataset_entries as datasets_mod
from tunescope.study.context_checks import check_contexts
from tunescope.study.default_study import default_raw
from tunescope.study.jobs import Job, dataset_kinds, plan, record
from tunescope.study.spec import StudySpec, read_yaml, resolve, set_value
from tunescope.study.store import RunStore
from tunescope.study.yaml_source import Source


@dataclass
class StudyRun:
    """What one :meth:`Study.run` did.

    run_dir: the run directory; records: run.json's job records (status ``"done"``: ran now,
    ``"skipped"``: finished in an earlier run, ``"failed"``: with ``error``); wall_s: seconds
    of the whole run; report: report.html, or None when not written; results:
    ``{analysis: {model_key: Result}}`` of every finished shard."""

    run_dir: Path
    records: list[dict]
    wall_s: float
    report: Path | None = None
    results: dict = field(default_factory=dict, repr=False)

    def count(self, status: str) -> int:
        return sum(r["status"] == status for r in self.records)

    @property
    def ran(self) -> int:
        """Jobs run (and finished) by this call."""
        return self.count("done")

    @property
    def skipped(self) -> int:
        """Jobs whose shards an earlier run had finished."""
        return self.count("skipped")

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.records if r["status"] == "failed"]


class Study:
    """A base model, tuned models, analyses with their configs, datasets and a seed.

    ``Study(base=..., tuned=[...], analyses=[...], datasets={...}, seed=0, device=None,
    dtype=None)`` resolves and checks everything at once (one-line errors naming the field);
    :meth:`from_yaml` and :meth:`default` build the same from a file or the default study.
    ``analyses``: names or groups (``consistency``, ``recall``, ``attribution``, ``heads``,
    ``concepts``), or a mapping name -> config overrides; ``datasets``: kind -> source and
    limits (see :mod:`tunescope.study.dataset_entries`)."""

    def __init__(self, base=None, tuned=(), analyses=None, datasets=None, seed: int = 0,
                 device: str | None = None, dtype: str | None = None, *,
                 spec: StudySpec | None = None):
        if spec is None:
            raw = {"base": base, "tuned": list(tuned) if isinstance(tuned, (list, tuple))
                   else tuned, "analyses": analyses, "datasets": datasets, "seed": seed,
                   "device": device, "dtype": dtype}
            spec = resolve({k: v for k, v in raw.items() if v is not None})
        self.spec = spec

    @classmethod
    def from_dict(cls, raw: dict, overrides: list[str] = ()) -> Study:
        """A study from plain values (the YAML layout), with ``PATH=VALUE`` overrides."""
        for assignment in overrides:
            raw = set_value(raw, assignment)
        return cls(spec=resolve(raw))

    @classmethod
    def from_yaml(cls, path, overrides: list[str] = ()) -> Study:
        """A study from a YAML file; errors name the file, line and field."""
        raw, source = read_yaml(path)
        for assignment in overrides:
            if not isinstance(raw, dict):
                break
            raw = set_value(raw, assignment)
        return cls(spec=resolve(raw, source))

    @classmethod
    def default(cls, overrides: list[str] = ()) -> Study:
        """The default study: the two bundled models, every analysis at reduced sizes."""
        raw, source = default_raw()
        for assignment in overrides:
            raw = set_value(raw, assignment)
        return cls(spec=resolve(raw, source))

    @classmethod
    def from_command(cls, study_file=None, options: dict | None = None,
                     overrides: list[str] = ()) -> Study:
        """The study of a ``tunescope run`` command line: the YAML file ``study_file``, else the
        flags alone when they name a base model, else the default study; then the flags in
        ``options`` (the YAML's top-level keys, e.g. ``{"base": ..., "tuned": [...], "out":
        ...}``; None values are left out) over it, then the ``PATH=VALUE`` ``overrides``."""
        options = {k: v for k, v in (options or {}).items() if v is not None}
        if study_file is not None:
            raw, source = read_yaml(study_file)
        elif options.get("base") is not None:
            raw, source = {}, Source()
        else:
            from tunescope.study.default_study import default_raw
            raw, source = default_raw()
        if not isinstance(raw, dict):
            raise source.error((), f"a study must be a mapping, got {type(raw).__name__}")
        raw = {**raw, **options}
        for assignment in overrides:
            raw = set_value(raw, assignment)
        return cls(spec=resolve(raw, source))

    def jobs(self) -> list[Job]:
        return plan(self.spec)

    def finished_jobs(self, out=None) -> list[Job]:
        """The jobs whose shards are already finished in the run directory ``out`` (default the
        spec's); reads nothing but the shards' markers."""
        store = RunStore(Path(out) if out is not None else self.spec.out)
        return [j for j in self.jobs() if store.is_done(j.model, j.analysis)]

    def run(self, out=None, *, executor: str | None = None, address: str | None = None,
            force: bool = False, compare: bool = True, report: bool = True,
            console=None) -> StudyRun:
        """Run every unfinished job and write the run directory (``out``, default the spec's).

        Re-running the same study resumes (finished shards are skipped); a different study in
        ``out`` is refused unless ``force`` (start over). ``executor``: ``"local"`` or
        ``"ray"`` (``address`` joins a cluster). ``compare``/``report``: write the comparison
        tables and report.html after the jobs. ``console``: a rich Console for the summary
        table (None: print nothing).

        While it runs, the objects alive when it started (imported modules above all) are kept
        out of the cycle collector's passes (``gc.freeze``; undone at the end): the full
        collection that frees each dropped model then walks only what the run made."""
        gc.freeze()
        try:
            return self._run(out, executor, address, force, compare, report, console)
        finally:
            gc.unfreeze()

    def _run(self, out, executor, address, force, compare, report, console) -> StudyRun:
        start = time.perf_counter()
        spec = self.spec.with_run(out, executor, address)
        if spec.executor not in ("local", "ray"):
            raise TunescopeError(f"unknown executor '{spec.executor}'; use local or ray")
        store = RunStore(spec.out)
        jobs = plan(spec)
        # Every input is read and checked before anything is written: a failed check leaves
        # the run directory as it was, so the corrected command simply runs.
        t0 = time.perf_counter()
        data, inputs = datasets_mod.load_inputs(spec.datasets, dataset_kinds(jobs), spec.seed)
        check_contexts(spec, data)
        timings: dict = {"datasets_s": time.perf_counter() - t0}
        with run_lock(store.root):
            store.prepare(spec, inputs, force=force)
            fingerprint = spec.fingerprint(inputs)
            pending = [j for j in jobs if not store.is_done(j.model, j.analysis)]
            records: dict[Job, dict] = {}
            for job in jobs:
                if job not in pending:
                    shard_t = store.provenance(job.model, job.analysis).get("timings", {})
                    records[job] = record(job, "skipped", shard_t.get("analysis_s"))
            if pending:
                if spec.executor == "ray":
                    from tunescope.study.ray_executor import run_ray as execute
                else:
                    from tunescope.study.local_executor import run_local as execute
                t0 = time.perf_counter()
                with progress(len(pending), f"study ({len(pending)} jobs)", min_total=1) as bar:
                    def on_record(rec: dict) -> None:
                        records[Job(rec["model"], rec["analysis"])] = rec
                        bar.advance()
                    timings["load_s"] = execute(spec, store, pending, data, fingerprint,
                                                on_record)
                timings["jobs_s"] = time.perf_counter() - t0
            ordered = [records[j] for j in jobs if j in records]
            info = {"fingerprint": fingerprint, "executor": spec.executor, "timings": timings,
                    "jobs": ordered}
            results, path = finish(store, spec.to_dict(), info, compare=compare, report=report,
                                   start=start)
        models = [m.key for m in spec.models]
        run = StudyRun(store.root, ordered, time.perf_counter() - start, path, results)
        if console is not None:
            from tunescope.study.summary import summary_table
            console.print(summary_table(models, list(spec.analyses), results, ordered))
        return run


def _models(study: dict) -> list[dict]:
    """``[{"key", "role", "spec"}]`` of a resolved spec dict, base first."""
    return ([{"key": study["base"]["key"], "role": "base", "spec": study["base"]["spec"]}]
            + [{"key": m["key"], "role": "tuned", "spec": m["spec"]} for m in study["tuned"]])


def finish(store: RunStore, study: dict, info: dict, *, compare: bool = True,
           report: bool = True, start: float | None = None) -> tuple[dict, Path | None]:
    """After the jobs: combined tables, comparisons, report.html and run.json.

    ``study``: the resolved spec dict; ``info``: run.json so far (``jobs``, ``timings``, ...);
    ``start``: perf_counter of the run's start (for ``wall_s``). Returns the results
    ``{analysis: {model_key: Result}}`` and the report's path (None when not written)."""
    models = _models(study)
    keys = [m["key"] for m in models]
    analyses = list(study["analyses"])
    timings = info.setdefault("timings", {})
    t0 = time.perf_counter()
    results = store.results(keys, analyses)
    for analysis, by_model in results.items():
        if by_model:
            store.write_combined(analysis, by_model)
    timings["combine_s"] = time.perf_counter() - t0
    comparisons, variants = {}, {}
    if compare:
        t0 = time.perf_counter()
        comparisons = compare_all(results, keys[0], study.get("seed", 0))
        for analysis, table in comparisons.items():
            store.write_comparison(analysis, table)
        variants = compare_all_variants(results, keys[1:], study.get("seed", 0))
        for analysis, table in variants.items():
            store.write_comparison(f"{analysis}.variants", table)
        timings["compare_s"] = time.perf_counter() - t0
    for m in models:
        m["metadata"] = _metadata(results, m["key"])
    path = None
    if report:
        from tunescope.report import write_report
        t0 = time.perf_counter()
        info["wall_s"] = time.perf_counter() - start if start is not None else None
        path = write_report(store.report_path, study, models, results, comparisons, info,
                            variants=variants)
        timings["report_s"] = time.perf_counter() - t0
    info["wall_s"] = time.perf_counter() - start if start is not None else info.get("wall_s")
    store.write_run_info({"format": "tunescope-run/1", **info})
    return results, path


def compare_all(results: dict[str, dict[str, Result]], base: str, seed: int) -> dict:
    """``{analysis: compare_study(...)}`` for each analysis with the base and one tuned model."""
    from tunescope.compare import compare_study

    return {a: compare_study(by_model, base, seed=seed) for a, by_model in results.items()
            if base in by_model and len(by_model) > 1}


def compare_all_variants(results: dict[str, dict[str, Result]], tuned: list[str],
                         seed: int) -> dict:
    """``{analysis: compare_variants(...)}`` for each analysis with two or more of the tuned
    models (the tuned models against each other)."""
    shared = [a for a, by_model in results.items() if sum(k in by_model for k in tuned) > 1]
    if not shared:
        return {}
    from tunescope.compare import compare_variants

    return {a: compare_variants(results[a], tuned, seed=seed) for a in shared}


def _metadata(results: dict, key: str) -> dict:
    for by_model in results.values():
        if key in by_model:
            return by_model[key].provenance.get("model", {})
    return {}


def rebuild_report(run_dir, compare: bool = True) -> Path:
    """Rewrite the combined tables, comparisons and report.html of a run directory from its
    shards (no model is loaded); the report's path."""
    store = RunStore(run_dir)
    if not store.root.is_dir():
        raise TunescopeError(f"{run_dir} is not a study run directory (no such directory)")
    if store.stored_spec() is None:
        raise TunescopeError(f"{run_dir} is not a study run directory (no spec.json)")
    with run_lock(store.root):
        stored = store.stored_spec()
        if stored is None:
            raise TunescopeError(f"{run_dir} is not a study run directory (no spec.json)")
        previous = store.run_info() or {}
        info = {k: previous.get(k) for k in ("fingerprint", "executor", "timings", "jobs",
                                             "wall_s") if k in previous}
        info.setdefault("fingerprint", stored["fingerprint"])
        _, path = finish(store, stored["spec"], info, compare=compare, report=True)
    return path

