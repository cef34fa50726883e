"""The Ray executor: one actor per model (with its GPU request), the same jobs and the same
shard files as the local executor.

Actors write their shards straight into the run directory, so the run directory must be on a
filesystem every node sees (always true for a local Ray instance). Without ``address`` a local
instance is started for the run (2 CPUs, no dashboard) and shut down afterwards; with
``address`` the run joins that cluster.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tunescope.errors import TunescopeError
from tunescope.study.jobs import Job, by_model, execute, failed_load, free_memory, load_model
from tunescope.study.spec import StudySpec
from tunescope.study.store import RunStore

LOCAL_CPUS = 2


def import_ray():
    """The ``ray`` module, or a one-line TunescopeError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise TunescopeError("the ray executor needs Ray: pip install tunescope[ray]") from None
    return ray


class ModelWorker:
    """Holds one model (loaded on the first job) and runs its jobs one after another."""

    def __init__(self, spec: StudySpec, key: str, root: str, fingerprint: str, threads: int):
        import torch

        torch.set_num_threads(max(1, threads))
        self.spec, self.key, self.store = spec, key, RunStore(root)
        self.fingerprint = fingerprint
        self.lm, self.error, self.load_s = None, None, None

    def run(self, job: Job, datasets: dict) -> dict:
        if self.lm is None and self.error is None:
            start = time.perf_counter()
            try:
                self.lm = load_model(self.spec, self.key)
            except TunescopeError as e:
                self.error = e
            self.load_s = time.perf_counter() - start
        if self.error is not None:
            return failed_load([job], self.error)[0]
        return execute(self.lm, job, self.spec, datasets, self.store, self.fingerprint)

    def close(self) -> float | None:
        """Free the model; the seconds its load took."""
        self.lm = None
        free_memory()
        return self.load_s


def run_ray(spec: StudySpec, store: RunStore, jobs: list[Job], datasets: dict,
            fingerprint: str, on_record: Callable[[dict], None]) -> dict:
    """Run ``jobs`` on Ray actors (one per model); ``on_record`` gets each job's record as it
    finishes. Returns ``{model_key: load seconds}``."""
    import torch

    ray = import_ray()
    env = {"env_vars": {"TUNESCOPE_PROGRESS": "0", "TRANSFORMERS_VERBOSITY": "error"}}
    started = not ray.is_initialized()
    if started:
        try:
            if spec.address:
                ray.init(address=spec.address, runtime_env=env, log_to_driver=False)
            else:
                ray.init(num_cpus=LOCAL_CPUS, include_dashboard=False, runtime_env=env,
                         log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = spec.address or "a local instance"
            raise TunescopeError(f"cannot start Ray ({where}): "
                                 f"{' '.join(str(e).split())[:200]}") from None
    worker_cls = ray.remote(ModelWorker)
    groups = by_model(jobs)
    threads = torch.get_num_threads()
    try:
        data_ref = ray.put(datasets)
        actors = {key: worker_cls.options(num_cpus=1, num_gpus=spec.model(key).num_gpus or 0)
                  .remote(spec, key, str(store.root.resolve()), fingerprint, threads)
                  for key in groups}
        pending = [actors[j.model].run.remote(j, data_ref) for js in groups.values() for j in js]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            on_record(ray.get(ready[0]))
        load_s = {key: s for key, s in zip(actors, ray.get([a.close.remote() for a in
                                                             actors.values()])) if s is not None}
        for actor in actors.values():
            ray.kill(actor)
        return load_s
    finally:
        if started:
            ray.shutdown()
