"""The local executor: one model in memory at a time.

For each model with pending jobs: ``tunescope.load`` it once, run all its jobs (each writes its
shard as soon as it finishes), then free it before the next model is loaded.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tunescope.errors import TunescopeError
from tunescope.study.jobs import Job, by_model, execute, failed_load, free_memory, load_model
from tunescope.study.spec import StudySpec
from tunescope.study.store import RunStore


def run_local(spec: StudySpec, store: RunStore, jobs: list[Job], datasets: dict,
              fingerprint: str, on_record: Callable[[dict], None]) -> dict:
    """Run ``jobs`` (grouped by model, in order) in this process; ``on_record`` gets each
    job's run.json record as it finishes. Returns ``{model_key: load seconds}``."""
    groups = by_model(jobs)
    load_s = {}
    for key, model_jobs in groups.items():
        start = time.perf_counter()
        try:
            lm = load_model(spec, key)
        except TunescopeError as e:
            for rec in failed_load(model_jobs, e):
                on_record(rec)
            continue
        load_s[key] = time.perf_counter() - start
        try:
            for job in model_jobs:
                on_record(execute(lm, job, spec, datasets, store, fingerprint))
        finally:
            del lm
            free_memory()
    return load_s
