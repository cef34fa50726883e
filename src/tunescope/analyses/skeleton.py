"""The skeleton every analysis runs in: its timer, stage timings, batch sizing with the engine's
out-of-memory back-off, and the assembly of its :class:`~tunescope.result.Result`.

::

    @register("my_analysis", MyConfig, dataset="prompts")
    def my_analysis(lm, prompts, config=MyConfig()):
        run = AnalysisRun("my_analysis", lm, config)
        with run.stage("forward_s"):
            rows = run.batches(prompts, lambda chunk: score(lm, chunk))
        return run.result({"scores": table(rows)}, summary={...},
                          dataset={"kind": "prompts", "size": len(prompts), "fingerprint": ...})

Timings (seconds) go to the provenance: one entry per :meth:`AnalysisRun.stage`, and
``analysis_s``, the whole call, when the Result is made.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from tunescope.engine.batching import BatchSizer, default_batch_size
from tunescope.models.lm import LM
from tunescope.result import Result, provenance


class AnalysisRun:
    """One call of analysis ``name`` on ``lm`` with ``config`` (a dataclass).

    ``sizer``: a :class:`~tunescope.engine.batching.BatchSizer` starting at the config's
    ``batch_size`` (when it has one and it is set) or the engine's default for the device; it
    halves on out-of-memory and keeps the smaller size for the rest of the call."""

    def __init__(self, name: str, lm: LM, config):
        self.name, self.lm, self.config = name, lm, config
        self.started = time.perf_counter()
        self.timings: dict[str, float] = {}
        self.sizer = BatchSizer(getattr(config, "batch_size", None) or default_batch_size(lm))

    @contextmanager
    def stage(self, key: str) -> Iterator[None]:
        """Time the block as ``timings[key]`` (seconds)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[key] = time.perf_counter() - start

    def batches(self, items: Sequence, fn: Callable[[Sequence], object]) -> list:
        """``fn`` on consecutive batches of ``items`` (one result per batch, in order), the batch
        halved and retried on out-of-memory (:meth:`BatchSizer.run`)."""
        return self.sizer.run(items, fn)

    def result(self, tables: dict, summary: dict, dataset: dict, seed: int | None = None
               ) -> Result:
        """The Result: ``tables`` (name -> DataFrame), ``summary``, and the provenance of this
        call (model, config, ``dataset`` description, versions, ``seed``, timings)."""
        timings = {**self.timings, "analysis_s": time.perf_counter() - self.started}
        return Result(self.name, tables, summary,
                      provenance(self.lm, self.config, dataset, seed=seed, timings=timings))
