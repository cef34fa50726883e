"""C1 on real ParaRel under the old and the study's definitions, for each model.

    .venv/bin/python benchmarks/c1_definitions.py [--models gemma-3-270m smollm2-135m-instruct]
        [--facts 100] [--relations P17 P19 ...] [--seed 0] [--only before|after]

Relations (default) P17 P19 P36 P101 P103 P138 P176 P407 P449 P740 of ../shared/data/pararel,
templates with [Y] last, summed log-probability over candidates. Two definitions:

* before (tunescope until issue 13): the first ``--facts`` facts of each file, candidates =
  the objects of those facts only, consistency counted per subject;
* after (METHODS.md C1): a seeded random sample of ``--facts`` facts, candidates = every object
  of the relation's fact file, consistency counted per fact.

"before" is the new code run with the old choices (file-order sample, candidates cut to the
sample, the ``fact`` column dropped so the metrics group by subject). Prints per relation and
macro accuracy and consistency of both, and the number of candidates ranked.
"""

import argparse
import dataclasses
import time
from pathlib import Path

import pandas as pd

import tunescope
from tunescope.analyses import prediction_consistency
from tunescope.analyses.helpers.consistency_metrics import macro, per_relation

RELATIONS = ["P17", "P19", "P36", "P101", "P103", "P138", "P176", "P407", "P449", "P740"]
PARAREL = Path(__file__).resolve().parents[2] / "shared" / "data" / "pararel"


def relations(ids, facts, seed, definition):
    if definition == "after":
        return tunescope.data.pararel(ids, path=PARAREL, max_facts=facts, seed=seed)
    rels = tunescope.data.pararel(ids, path=PARAREL, max_facts=facts, sample="first")
    return [dataclasses.replace(r, candidates=()) for r in rels]     # candidates of the sample


def run(lm, ids, facts, seed, definition):
    rels = relations(ids, facts, seed, definition)
    start = time.perf_counter()
    res = prediction_consistency(lm, rels)
    seconds = time.perf_counter() - start
    preds = res.tables["predictions"]
    if definition == "before":
        preds = preds.drop(columns="fact")                      # group by subject
    table = per_relation(preds).assign(n_candidates=[len(r.objects) for r in rels])
    return table, macro(table), seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["gemma-3-270m", "smollm2-135m-instruct"])
    ap.add_argument("--relations", nargs="+", default=RELATIONS)
    ap.add_argument("--facts", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", choices=["before", "after"])
    args = ap.parse_args()
    pd.set_option("display.width", 160)
    for name in args.models:
        lm = tunescope.load(name)
        for definition in [args.only] if args.only else ["before", "after"]:
            table, m, seconds = run(lm, args.relations, args.facts, args.seed, definition)
            print(f"\n== {name}: {definition} ({args.facts} facts per relation, {seconds:.0f} s)")
            print(table[["relation", "n_candidates", "n_facts", "accuracy", "consistency",
                         "consistent_subjects", "consistent_and_correct"]]
                  .to_string(index=False, float_format="%.3f"))
            print("macro " + "  ".join(f"{k} {v:.3f}" for k, v in m.items()), flush=True)


if __name__ == "__main__":
    main()
