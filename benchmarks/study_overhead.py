"""Study overhead: wall time of a whole study against the sum of its jobs' analysis time.

    .venv/bin/python benchmarks/study_overhead.py [--out DIR] [--set PATH=VALUE ...]
        [--executor local|ray] [--no-report]

Runs the default study (the two bundled models, every analysis at the default study's reduced
sizes; ``--set`` changes any of them) in this process into a fresh run directory (a temporary
one unless ``--out``), then prints the wall time, the sum of the analyses' own times
(``timings.analysis_s`` of every job), the overhead ratio (wall - sum) / sum and where the
overhead went (model loads, datasets, combining shards, comparisons, report).

Targets (issue 7): default study under 10 minutes on 2 CPU cores; overhead <= 10%.
"""

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from tunescope.study import Study


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", help="run directory (must not hold another study)")
    parser.add_argument("--set", dest="assignments", action="append", default=[],
                        help="PATH=VALUE change of the default study")
    parser.add_argument("--executor", default="local")
    parser.add_argument("--no-report", action="store_true", help="skip compare and report")
    args = parser.parse_args()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="tunescope-study-"))
    study = Study.default(args.assignments)
    start, cpu_start = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    run = study.run(out, executor=args.executor, force=True, compare=not args.no_report,
                    report=not args.no_report)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage.ru_utime - cpu_start.ru_utime) + (usage.ru_stime - cpu_start.ru_stime)
    done = [r for r in run.records if r["status"] == "done"]
    analysis = sum(r["analysis_s"] for r in done)
    import json
    timings = json.loads((out / "run.json").read_text())["timings"]
    print(f"jobs: {len(done)} run, {len(run.failed)} failed")
    for r in run.records:
        shown = f"{r['analysis_s']:7.1f} s" if r["analysis_s"] is not None else "   failed"
        print(f"  {r['model']:24s} {r['analysis']:28s} {shown}")
    print(f"wall time            {wall:8.1f} s ({wall / 60:.2f} min; target < 10 min)")
    print(f"CPU time             {cpu:8.1f} s (/ 2 cores = {cpu / 2 / 60:.2f} min: the wall time "
          "on 2 cores nobody else uses)")
    print(f"sum of analysis time {analysis:8.1f} s")
    print(f"overhead             {wall - analysis:8.1f} s = {(wall - analysis) / analysis:.1%} "
          "of the analysis time (target <= 10%)")
    parts = {"model loads": sum(timings.get("load_s", {}).values()),
             "datasets": timings.get("datasets_s", 0), "combine shards": timings.get("combine_s", 0),
             "comparisons": timings.get("compare_s", 0), "report": timings.get("report_s", 0)}
    for name, value in parts.items():
        print(f"  {name:18s} {value:8.1f} s")
    own = wall - analysis - parts["model loads"] - parts["comparisons"] - parts["report"]
    print(f"  {'the rest':18s} {wall - analysis - sum(parts.values()):8.1f} s (spec, store, "
          "seeding, shard writes)")
    print(f"runner's own overhead (wall - analyses - loads - comparisons - report): {own:.1f} s "
          f"= {own / analysis:.1%}")
    if not args.out:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
