"""C4 on real ParaRel with the bundled models: knockout, extraction and enrichment curves.

    .venv/bin/python benchmarks/recall_real.py [--models ...] [--examples 100] [--save DIR]

Relations P17 P36 P103 P176 P449 (first 100 facts each, templates with [Y] last); up to
``--examples`` correctly answered queries per model. Prints each curve as a compact table.
"""

import argparse
import time
from pathlib import Path

import tunescope
from tunescope.analyses import (
    attention_knockout,
    extraction_rate,
    get,
    subject_enrichment,
)

PARAREL = Path(__file__).resolve().parents[2] / "shared" / "data" / "pararel"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["gemma-3-270m", "smollm2-135m-instruct"])
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--save")
    args = parser.parse_args()
    relations = tunescope.data.pararel(["P17", "P36", "P103", "P176", "P449"], path=PARAREL,
                                       max_facts=100)
    config = get("attention_knockout").make_config(max_examples=args.examples,
                                                   per_relation=-(-args.examples // 5))
    for name in args.models:
        lm = tunescope.load(name)
        print(f"== {name} ({lm.anatomy.n_layers} layers)")
        start = time.perf_counter()
        knock = attention_knockout(lm, relations, config)
        extract = extraction_rate(lm, relations, config)
        normed = extraction_rate(lm, relations, get("extraction_rate").make_config(
            max_examples=args.examples, per_relation=-(-args.examples // 5),
            projection="final_norm"))
        enrich = subject_enrichment(lm, relations, config)
        print(f"{knock.summary['n_examples']} examples; {time.perf_counter() - start:.0f} s")
        print(knock.tables["queries"].pivot_table(index="relation", columns="status",
                                                  values="n_queries", fill_value=0).to_string())
        curves = knock.tables["curves"].pivot(index="layer", columns="block", values="mean")
        rates = extract.tables["rates"].pivot(index="layer", columns="component", values="rate")
        ranks = enrich.tables["curves"].pivot(index="layer", columns="position", values="median_rank")
        probs = enrich.tables["curves"].pivot(index="layer", columns="position",
                                              values="mean_probability")
        normed_rates = normed.tables["rates"].pivot(index="layer", columns="component",
                                                    values="rate")
        table = (curves.add_prefix("knockout%_").join(rates.add_prefix("extract_"))
                 .join(normed_rates.add_prefix("extract_normed_"))
                 .join(ranks.add_prefix("rank_")).join(probs.add_prefix("p_")))
        print(table.to_string(float_format="%.2f"))
        print("knockout:", {k: v for k, v in knock.summary.items() if "strongest" in k})
        print("extraction (unembedding):", extract.summary)
        print("extraction (final_norm):", normed.summary)
        print("enrichment:", enrich.summary)
        if args.save:
            for res in (knock, extract, enrich):
                res.save(f"{args.save}/{name}/{res.analysis}")
        del lm


if __name__ == "__main__":
    main()
