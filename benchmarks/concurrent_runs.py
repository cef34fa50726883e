"""Two `tunescope run` processes started at the same moment on one run directory (issue 15).

    python benchmarks/concurrent_runs.py [--trials 20] [--pararel ../shared/data/pararel]

Each trial makes a fresh run directory and starts two command-line runs of a small two-model
study (Gemma 3 270M vs SmolLM2-135M-Instruct, prediction consistency on one ParaRel relation)
at once, one with ``max_facts: 5`` and one with ``max_facts: 3``. It then checks what a user
would rely on:

- outcome: which process ran and what the other one did (refused with exit 2 naming the
  directory and the lock holder's PID, or ran after the first had finished);
- no traceback on either process's stderr;
- the run directory is consistent: ``spec.json`` names the facts limit that the combined
  predictions actually hold (facts per relation), and every shard was made under that spec;
- rerunning the winner's study resumes ("0 jobs run") and serves the same tables.

It prints one line per trial and a table of outcome counts. Before the run-directory lock,
2 of 5 such trials left a directory whose spec said 3 facts while its shards held 5.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
STUDY = """base: gemma-3-270m
tuned: [smollm2-135m-instruct]
analyses: [prediction_consistency]
datasets:
  pararel: {{source: {pararel}, relations: [P17], max_facts: {facts}}}
seed: 0
"""


def start(study: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "tunescope", "run", str(study), "--out",
                             str(out), "--no-report"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def facts_held(out: Path) -> int | None:
    """Facts per relation in the combined predictions (None when there are none)."""
    path = out / "results" / "prediction_consistency" / "predictions.parquet"
    if not path.is_file():
        return None
    table = pd.read_parquet(path)
    per = table.groupby(["model", "relation"])["fact"].nunique()
    return int(per.max()) if len(per) and per.min() == per.max() else -1


def spec_facts(out: Path) -> int | None:
    path = out / "spec.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text())["spec"]["datasets"]["pararel"]["max_facts"]


def trial(work: Path, pararel: str, number: int) -> dict:
    out = work / f"run-{number}"
    studies = {}
    for facts in (5, 3):
        studies[facts] = work / f"study-{facts}.yaml"
        studies[facts].write_text(STUDY.format(pararel=pararel, facts=facts))
    begin = time.perf_counter()
    procs = {facts: start(studies[facts], out) for facts in (5, 3)}
    done = {facts: (*p.communicate(), p.returncode) for facts, p in procs.items()}
    seconds = time.perf_counter() - begin
    codes = {facts: rc for facts, (_, _, rc) in done.items()}
    tracebacks = sum("Traceback" in err for _, err, _ in done.values())
    refused = [f for f, (_, err, rc) in done.items()
               if rc == 2 and "is in use by another tunescope process (PID" in err]
    if sorted(codes.values()) == [0, 2] and len(refused) == 1:
        outcome = "one ran, the other refused at once (exit 2, holder's PID)"
    elif list(codes.values()) == [0, 0]:
        outcome = "both ran, one after the other"
    else:
        lines = {f: (err.strip().splitlines() or [""])[-1][:100] for f, (_, err, _) in done.items()}
        outcome = f"other: exit codes {codes}, last lines {lines}"
    held, said = facts_held(out), spec_facts(out)
    consistent = held is not None and held == said
    resumed = same = False
    if consistent:
        before = pd.read_parquet(out / "results" / "prediction_consistency" / "predictions.parquet")
        again = start(studies[said], out)
        stdout, stderr = again.communicate()
        resumed = again.returncode == 0 and "0 jobs run" in stdout + stderr
        after = pd.read_parquet(out / "results" / "prediction_consistency" / "predictions.parquet")
        same = before.equals(after)
    return {"trial": number, "outcome": outcome, "exit codes (5 facts, 3 facts)": codes,
            "spec facts": said, "facts held": held, "consistent": consistent,
            "tracebacks": tracebacks, "rerun resumed": resumed, "same tables": same,
            "seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--pararel", default=str(ROOT.parent / "shared" / "data" / "pararel"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for number in range(1, args.trials + 1):
            row = trial(Path(tmp), args.pararel, number)
            print(json.dumps(row), flush=True)
            rows.append(row)
    table = pd.DataFrame(rows)
    print()
    print(f"{len(rows)} trials, two runs started at once on one directory each")
    for outcome, n in Counter(table["outcome"]).most_common():
        print(f"  {n:3d}  {outcome}")
    print(f"  consistent run directory (spec.json facts == facts in the tables): "
          f"{int(table['consistent'].sum())}/{len(rows)}")
    print(f"  rerun of the winner resumed with 0 jobs and the same tables: "
          f"{int((table['rerun resumed'] & table['same tables']).sum())}/{len(rows)}")
    print(f"  tracebacks: {int(table['tracebacks'].sum())}")


if __name__ == "__main__":
    main()
