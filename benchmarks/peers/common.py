"""What the peer benchmarks share: their own virtual environment with the peers installed, the
agreement of two arrays, timing that takes turns, the bundled models' directories, and the one line
each pair prints.

The peers (lm-eval, captum, inseq, nnsight) are not tunescope dependencies and CI does not install
them. :func:`ensure_peers` re-runs the calling script under ``.venv-peers`` (created on first use
with the same constraints file as ``.venv``, so torch is the same CPU build) when the current
interpreter cannot import them.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
PEERS_VENV = ROOT / ".venv-peers"
PEERS = {"lm_eval": "lm-eval==0.4.13", "captum": "captum==0.9.0", "inseq": "inseq==0.7.1",
         "nnsight": "nnsight==0.8.1"}
"""Importable name -> the pinned requirement the benchmarks were written against."""


def missing(modules: Sequence[str]) -> list[str]:
    """The modules of ``modules`` that this interpreter cannot import."""
    return [m for m in modules if importlib.util.find_spec(m) is None]


def peers_python() -> Path:
    return PEERS_VENV / "bin" / "python"


def create_peers_venv(modules: Sequence[str]) -> None:
    """``.venv-peers`` with tunescope (editable) and the peers, torch pinned by constraints.txt."""
    env = {**os.environ, "PIP_CONSTRAINT": str(ROOT / "constraints.txt"),
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    if not peers_python().exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
    pip = [str(peers_python()), "-m", "pip", "install", "--quiet", "-c",
           str(ROOT / "constraints.txt")]
    subprocess.run(pip + ["torch==2.13.0"], check=True, env=env)
    subprocess.run(pip + ["-e", str(ROOT)] + [PEERS[m] for m in modules], check=True, env=env)


def ensure_peers(modules: Sequence[str]) -> None:
    """Return when ``modules`` import here; else re-run this script under ``.venv-peers``
    (creating or completing it first). Exits with a clear line when that cannot work."""
    if not missing(modules):
        return
    if Path(sys.prefix).resolve() == PEERS_VENV.resolve():       # already in the peer venv
        sys.exit(f"peers not importable even in {PEERS_VENV}: {', '.join(missing(modules))}")
    needs = [m for m in modules if m in PEERS]
    print(f"running under {PEERS_VENV} (peers: {', '.join(needs)})", flush=True)
    probe = [str(peers_python()), "-c",
             "import importlib.util, sys; sys.exit(any(importlib.util.find_spec(m) is None "
             f"for m in {list(needs)!r}))"]
    if not peers_python().exists() or subprocess.run(probe).returncode != 0:
        create_peers_venv(needs)
    os.execv(str(peers_python()), [str(peers_python()), *sys.argv])


def agreement(ours, peer) -> tuple[float, float]:
    """(max absolute difference, max relative difference) of two arrays of one shape; the
    relative difference divides by the largest magnitude of ``peer`` (so entries near zero do
    not blow it up)."""
    a, b = np.asarray(ours), np.asarray(peer)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0, 0.0
    a, b = a.reshape(-1), b.reshape(-1)
    diff = scale = 0.0
    for start in range(0, a.size, 1 << 20):     # in float64, a million values at a time
        x = a[start:start + (1 << 20)].astype(np.float64)
        y = b[start:start + (1 << 20)].astype(np.float64)
        diff = max(diff, float(np.max(np.abs(x - y))))
        scale = max(scale, float(np.max(np.abs(y))))
    return diff, (diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf")))


def interleaved(fns: Sequence[Callable[[], object]], repeat: int = 2,
                warm_up: bool = True) -> tuple[list[float], list[object]]:
    """Time each of ``fns`` ``repeat`` times in turn (a, b, a, b, ...), after one untimed call
    of each when ``warm_up``: (the shortest time of each, the last result of each). Taking turns
    spreads any load of the machine over both sides alike."""
    results = [fn() for fn in fns] if warm_up else [None] * len(fns)
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            results[i] = fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best, results


def line(pair: str, diff: tuple[float, float], ours_s: float, peer_s: float, work: str) -> str:
    """The one line a pair prints: agreement and the throughput ratio tunescope / peer (the
    same work in both, so it is peer time / tunescope time)."""
    ratio = peer_s / ours_s if ours_s > 0 else float("inf")
    return (f"{pair}: max abs diff {diff[0]:.2e}, max rel diff {diff[1]:.2e}; "
            f"tunescope {ours_s:.2f} s, peer {peer_s:.2f} s for {work}; "
            f"throughput ratio tunescope/peer {ratio:.2f}x")


def machine() -> str:
    import torch
    import transformers
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"transformers {transformers.__version__}, Python {platform.python_version()}")


def model_dir(name: str) -> str:
    """The prepared directory of bundled model ``name`` (prepared on first use)."""
    import tunescope
    from tunescope.models import bundled
    tunescope.load(name)                           # prepares the cache when needed
    return str(bundled.model_dir(name))
