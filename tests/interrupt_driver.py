"""Run ``tunescope run ...`` and SIGKILL the process at one named point (for tests/test_interrupt.py).

    python tests/interrupt_driver.py POINT run study.yaml --out DIR

The kill is a real SIGKILL of this process (no cleanup, no ``finally``) at the point named:

- ``prepare``: a bundled model's GGUF is dequantised and saved, before the prepared directory is
  renamed into the cache;
- ``mid-shard``: a job's shard is half written (its first table is on disk in the temporary
  directory, the rest is not);
- ``between-shards``: right after the first shard is renamed into place;
- ``combine``: the first combined table of ``results/`` is written, the others are not;
- ``report``: report.html is written to its temporary name, before it replaces the old one;
- ``disk-full``: no kill; the second shard's first table write fails with ENOSPC (a full disk);
- ``none``: no kill (the uninterrupted reference run).

The points are reached by wrapping the functions that do that work, so the production code
carries no test hooks.
"""

from __future__ import annotations

import os
import signal
import sys


def die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def arm(point: str) -> None:
    import pandas as pd

    from tunescope.models import bundled
    from tunescope.study.store import RunStore

    if point == "prepare":
        dequantise = bundled._dequantise

        def dequantise_then_die(gguf, out_dir):
            dequantise(gguf, out_dir)
            die()
        bundled._dequantise = dequantise_then_die
    elif point == "mid-shard":
        to_parquet = pd.DataFrame.to_parquet

        def to_parquet_then_die(self, path=None, *args, **kwargs):
            out = to_parquet(self, path, *args, **kwargs)
            if "/shards/" in str(path):
                die()
            return out
        pd.DataFrame.to_parquet = to_parquet_then_die
    elif point == "combine":
        from tunescope.study import store

        write_atomic = store.write_atomic

        def write_then_die(path, data):
            write_atomic(path, data)
            if "/results/" in str(path):
                die()
        store.write_atomic = write_then_die
    elif point == "between-shards":
        save = RunStore.save

        def save_then_die(self, *args, **kwargs):
            save(self, *args, **kwargs)
            die()
        RunStore.save = save_then_die
    elif point == "report":
        replace = os.replace

        def die_before_report(src, dst, *args, **kwargs):
            if str(dst).endswith("report.html"):
                die()
            return replace(src, dst, *args, **kwargs)
        os.replace = die_before_report
    elif point == "disk-full":
        import errno

        save, to_parquet = RunStore.save, pd.DataFrame.to_parquet
        saves = []

        def save_counted(self, *args, **kwargs):
            saves.append(args)
            return save(self, *args, **kwargs)

        def to_parquet_on_a_full_disk(self, path=None, *args, **kwargs):
            if len(saves) >= 2 and "/shards/" in str(path):
                raise OSError(errno.ENOSPC, "No space left on device")
            return to_parquet(self, path, *args, **kwargs)
        RunStore.save = save_counted
        pd.DataFrame.to_parquet = to_parquet_on_a_full_disk
    elif point != "none":
        raise SystemExit(f"unknown point {point}")


if __name__ == "__main__":
    arm(sys.argv[1])
    from tunescope.cli import main

    sys.argv = ["tunescope", *sys.argv[2:]]
    main()
