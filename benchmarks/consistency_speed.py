"""C1 speed on real ParaRel: shared-prompt candidate scoring against a plain batched forward
pass over the same prompts and against one forward pass per (prompt, candidate).

    .venv/bin/python benchmarks/consistency_speed.py [--model gemma-3-270m] [--facts 100]
        [--naive-prompts 40]

Relations P17 P19 P36 P101 P103 P138 P176 P407 P449 P740 of ../shared/data/pararel, first
``--facts`` facts each, templates with [Y] last. The naive way is timed on a sample of
``--naive-prompts`` prompts (all their candidates) spread over the relations and extrapolated
to the whole workload by its share of (prompt, candidate) pairs; the sample's scores are
checked against the engine's.

Targets (issue 3): throughput (prompt + candidate tokens / s) >= 0.75x the plain forward pass;
>= 10x faster than the naive way.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import tunescope
from tunescope.analyses import prediction_consistency
from tunescope.analyses.prediction_consistency import queries
from tunescope.engine.batching import left_pad, length_buckets
from tunescope.engine.scoring import split_continuations

RELATIONS = ["P17", "P19", "P36", "P101", "P103", "P138", "P176", "P407", "P449", "P740"]
PARAREL = Path(__file__).resolve().parents[2] / "shared" / "data" / "pararel"


@torch.inference_mode()
def plain_forward(lm, token_lists, batch_size=16):
    for bucket in length_buckets([len(t) for t in token_lists], batch_size):
        batch = left_pad([token_lists[i] for i in bucket], lm.tokenizer.pad_token_id)
        lm.model(**batch.model_inputs())


@torch.inference_mode()
def naive_scores(lm, prompt, candidates):
    n_prompt = len(lm.tokenizer(prompt)["input_ids"])
    out = []
    for c in candidates:
        ids = lm.tokenizer(prompt + " " + c)["input_ids"]
        lp = torch.log_softmax(lm.model(torch.tensor([ids])).logits[0].float(), -1)
        out.append(float(lp[torch.arange(n_prompt - 1, len(ids) - 1), torch.tensor(ids[n_prompt:])].sum()))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--facts", type=int, default=100)
    parser.add_argument("--naive-prompts", type=int, default=15)
    parser.add_argument("--pararel", default=str(PARAREL))
    parser.add_argument("--save", help="also save the C1 Result to this directory")
    args = parser.parse_args()
    lm = tunescope.load(args.model)
    relations = tunescope.data.pararel(RELATIONS, path=args.pararel, max_facts=args.facts)
    table = queries(relations)
    objects = {r.id: list(r.objects) for r in relations}
    split = [split_continuations(lm, p, objects[r]) for p, r in zip(table["prompt"], table["relation"])]
    prompt_tokens = sum(len(q.prefix) for q in split)
    cand_tokens = sum(len(c) for q in split for c in q.continuations)
    pairs = sum(len(q.continuations) for q in split)

    start = time.perf_counter()
    result = prediction_consistency(lm, relations)
    t_engine = time.perf_counter() - start
    start = time.perf_counter()
    plain_forward(lm, [q.prefix for q in split])
    t_plain = time.perf_counter() - start

    rng = np.random.default_rng(0)
    sample = sorted(rng.choice(len(table), size=min(args.naive_prompts, len(table)), replace=False))
    pred = result.tables["predictions"]
    start = time.perf_counter()
    sample_pairs, diffs = 0, []
    for i in sample:
        row = table.iloc[i]
        scores = naive_scores(lm, row["prompt"], objects[row["relation"]])
        sample_pairs += len(scores)
        gold = objects[row["relation"]].index(row["object"])
        diffs.append(abs(scores[gold] - pred.iloc[i]["gold_score"]))
        best = objects[row["relation"]][int(np.argmax(scores))]
        assert best == pred.iloc[i]["prediction"] or max(scores) - sorted(scores)[-2] < 1e-4
    t_sample = time.perf_counter() - start
    t_naive = t_sample * pairs / sample_pairs

    engine_tps = (prompt_tokens + cand_tokens) / t_engine
    plain_tps = prompt_tokens / t_plain
    print(f"model {args.model}: {len(relations)} relations x {args.facts} facts, {len(table)} "
          f"prompts, {pairs} (prompt, candidate) pairs, {torch.get_num_threads()} threads")
    print(f"tokens: {prompt_tokens} prompt + {cand_tokens} candidate")
    print(f"C1 analysis (engine): {t_engine:.1f} s; plain batched forward over the prompts: "
          f"{t_plain:.1f} s")
    print(f"throughput: engine {engine_tps:.0f} tok/s vs plain {plain_tps:.0f} tok/s = "
          f"{engine_tps / plain_tps:.2f}x (target >= 0.75x)")
    print(f"naive: {t_sample:.1f} s for {sample_pairs} pairs of {len(sample)} sampled prompts, "
          f"extrapolated to {pairs} pairs: {t_naive:.0f} s")
    print(f"speed-up over naive (extrapolated): {t_naive / t_engine:.0f}x (target >= 10x)")
    print(f"max |gold score difference| on the sample: {max(diffs):.2e}")
    cols = ["relation", "accuracy", "consistency", "consistent_subjects", "consistent_and_correct",
            "n_queries", "n_templates"]
    print(result.tables["per_relation"][cols].to_string(index=False, float_format="%.3f"))
    print({k: round(v, 3) for k, v in result.summary.items() if k.startswith("macro_")})
    if args.save:
        print("saved to", result.save(args.save))


if __name__ == "__main__":
    main()
