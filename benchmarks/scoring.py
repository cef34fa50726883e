"""Candidate scoring: the engine's shared-prompt scoring against the naive way and a plain
batched forward pass, all in this process.

    .venv/bin/python benchmarks/scoring.py [--model gemma-3-270m] [--prompts 100] [--candidates 20]

Prompts are ParaRel-style queries from the built-in mini ParaRel ("The capital of France is");
candidates are objects of the same relation. Prints:
- speed-up over the naive way (every prompt+candidate its own forward pass, batch 1), and the
  largest score difference between the two (target: >= 10x, identical within 1e-4);
- throughput (prompt + candidate tokens per second) against a plain batched forward pass over
  the same prompts (target: >= 0.75x).
"""

import argparse
import time

import torch

import tunescope
from tunescope.data.pararel import pararel
from tunescope.engine import score_continuations
from tunescope.engine.batching import left_pad, length_buckets
from tunescope.engine.scoring import split_continuations


def workload(n_prompts: int, n_candidates: int):
    """``n_prompts`` (prompt, candidates) queries cycling over relations, facts and templates."""
    relations = pararel()
    prompts, candidates = [], []
    i = 0
    while len(prompts) < n_prompts:
        rel = relations[i % len(relations)]
        fact = rel.facts[(i // len(relations)) % len(rel.facts)]
        template = rel.templates[(i // len(relations)) % len(rel.templates)]
        objects = list(rel.objects)
        pool = objects + [o for r in relations for o in r.objects if o not in objects]
        cands = [fact.object] + [o for o in pool if o != fact.object][:n_candidates - 1]
        prompts.append(template.prompt(fact.subject))
        candidates.append(cands)
        i += 1
    return prompts, candidates


@torch.inference_mode()
def naive(lm, prompts, candidates):
    scores = []
    for prompt, cands in zip(prompts, candidates):
        n_prompt = len(lm.tokenizer(prompt)["input_ids"])
        row = []
        for c in cands:
            ids = lm.tokenizer(prompt + " " + c)["input_ids"]
            lp = torch.log_softmax(lm.model(torch.tensor([ids])).logits[0].float(), -1)
            targets = torch.tensor(ids[n_prompt:])
            row.append(float(lp[torch.arange(n_prompt - 1, len(ids) - 1), targets].sum()))
        scores.append(row)
    return scores


@torch.inference_mode()
def plain_forward(lm, token_lists, batch_size=16):
    """A plain batched forward pass (full logits, no cache) over the given sequences."""
    for bucket in length_buckets([len(t) for t in token_lists], batch_size):
        batch = left_pad([token_lists[i] for i in bucket], lm.tokenizer.pad_token_id)
        lm.model(**batch.model_inputs())


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--prompts", type=int, default=100)
    parser.add_argument("--candidates", type=int, default=20)
    args = parser.parse_args()
    torch.manual_seed(0)
    lm = tunescope.load(args.model)
    prompts, candidates = workload(args.prompts, args.candidates)
    queries = [split_continuations(lm, p, c) for p, c in zip(prompts, candidates)]
    prompt_tokens = sum(len(q.prefix) for q in queries)
    cand_tokens = sum(len(c) for q in queries for c in q.continuations)

    score_continuations(lm, prompts[:4], candidates[:4])  # warm-up
    engine, t_engine = timed(score_continuations, lm, prompts, candidates)
    _, t_plain = timed(plain_forward, lm, [q.prefix for q in queries])
    reference, t_naive = timed(naive, lm, prompts, candidates)

    diff = max(abs(a - b) for e, r in zip(engine, reference) for a, b in zip(e.sum_logprob, r))
    engine_tps = (prompt_tokens + cand_tokens) / t_engine
    plain_tps = prompt_tokens / t_plain
    print(f"model {args.model}, {len(prompts)} prompts x {args.candidates} candidates, "
          f"{torch.get_num_threads()} threads, float32")
    print(f"tokens: {prompt_tokens} prompt + {cand_tokens} candidate")
    print(f"engine (shared prompt, KV cache): {t_engine:.2f} s")
    print(f"naive (one forward per prompt+candidate, batch 1): {t_naive:.2f} s")
    print(f"plain batched forward over the prompts: {t_plain:.2f} s")
    print(f"speed-up over naive: {t_naive / t_engine:.1f}x (target >= 10x)")
    print(f"max |score difference| engine vs naive: {diff:.2e} (target <= 1e-4)")
    print(f"throughput: engine {engine_tps:.0f} tok/s, plain forward {plain_tps:.0f} tok/s, "
          f"ratio {engine_tps / plain_tps:.2f}x (target >= 0.75x)")


if __name__ == "__main__":
    main()
