"""Jobs of a study: one per (model, analysis), each writing one shard.

A job's seed comes from the study seed and the analysis name only, so base and tuned models
see the same randomness and a job gives the same numbers whether it runs first or last, in a
fresh run or on resume.
"""

from __future__ import annotations

import gc
import hashlib
import random
import time
from dataclasses import dataclass

from tunescope.errors import TunescopeError
from tunescope.result import Result
from tunescope.study.spec import StudySpec
from tunescope.study.store import RunStore


@dataclass(frozen=True)
class Job:
    """Run analysis ``analysis`` on the model whose key is ``model``."""

    model: str
    analysis: str

    def __str__(self) -> str:
        return f"{self.model}/{self.analysis}"


def plan(spec: StudySpec) -> list[Job]:
    """All jobs of the study: models in study order (base first), each with every analysis."""
    return [Job(m.key, a) for m in spec.models for a in spec.analyses]


def by_model(jobs: list[Job]) -> dict[str, list[Job]]:
    """``jobs`` grouped by model key, models and jobs in the given order."""
    groups: dict[str, list[Job]] = {}
    for job in jobs:
        groups.setdefault(job.model, []).append(job)
    return groups


def job_seed(study_seed: int, analysis: str) -> int:
    """The seed of every job of ``analysis``: a hash of the study seed and the name (< 2^32)."""
    return int(hashlib.sha256(f"{study_seed}:{analysis}".encode()).hexdigest()[:8], 16)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (all CUDA devices included)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def dataset_kinds(jobs: list[Job]) -> list[str]:
    """The dataset kinds the jobs' analyses take, in order of first use."""
    from tunescope.analyses import REGISTRY

    return list(dict.fromkeys(REGISTRY[j.analysis].dataset for j in jobs))


def load_model(spec: StudySpec, key: str):
    """``tunescope.load`` the model ``key`` with its device, dtype and revision."""
    from tunescope.models import loading

    m = spec.model(key)
    return loading.load(m.spec, dtype=m.dtype, device=m.device, revision=m.revision,
                          trust_remote_code=m.trust_remote_code)


def free_memory() -> None:
    """Give the memory of dropped models back (call after ``del lm``; GPU caches included)."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def record(job: Job, status: str, analysis_s: float | None = None, job_s: float | None = None,
           error: str | None = None) -> dict:
    """One entry of run.json's ``jobs``."""
    return {"model": job.model, "analysis": job.analysis, "status": status,
            "analysis_s": analysis_s, "job_s": job_s, "error": error}


def execute(lm, job: Job, spec: StudySpec, datasets: dict, store: RunStore,
            fingerprint: str) -> dict:
    """Run one job on the loaded model and write its shard; the run.json record.

    A :class:`TunescopeError` (the analysis cannot run on this model or data) fails the job,
    recorded with its message; the study goes on. Any other exception propagates."""
    from tunescope.analyses import REGISTRY

    analysis = REGISTRY[job.analysis]
    seed = job_seed(spec.seed, job.analysis)
    seed_everything(seed)
    start = time.perf_counter()
    try:
        result: Result = analysis.run(lm, datasets[analysis.dataset], spec.analyses[job.analysis])
    except TunescopeError as e:
        return record(job, "failed", job_s=time.perf_counter() - start, error=str(e))
    job_s = time.perf_counter() - start
    result.provenance["study"] = {"model_key": job.model, "role": spec.model(job.model).role,
                                  "seed": seed, "fingerprint": fingerprint, "job_s": job_s}
    store.save(job.model, job.analysis, result)
    return record(job, "done", result.provenance.get("timings", {}).get("analysis_s", job_s),
                  job_s)


def failed_load(jobs: list[Job], error: TunescopeError) -> list[dict]:
    """Records of jobs that could not run because their model did not load."""
    return [record(j, "failed", error=f"model did not load: {error}") for j in jobs]
