"""W3 ffn_concepts for all layers against the SVDs alone, each measurement in a fresh process.

    .venv/bin/python benchmarks/ffn_concepts_speed.py [--model gemma-3-270m] [--words 26000]
        [--rounds 3]

Target (issue 6): ffn_concepts (SVDs, explained variance, top 50 words of 300 components per
layer) completes within 2x the time of the per-layer SVDs alone. Also printed: the same with the
study's offline labeller (5 runs), which the issue lists as a step of its own and which the
registered analysis runs by default.

Each round runs two new processes (so the tokenizer's caches, the labeller's per-word caches and
the allocator start cold, as in a study): one measures the SVDs alone and then the analysis
without labels, the other the SVDs alone and then the analysis with the offline labeller. The
rounds' ratios and their medians are printed (timings on a shared virtual machine vary by
+-15% from round to round).
"""

import argparse
import dataclasses
import gc
import json
import statistics
import subprocess
import sys
import time


def one_round(model: str, n_words: int, labeller: str) -> dict:
    import torch

    import tunescope
    from tunescope.analyses import ffn_concepts, get
    from tunescope.analyses.ffn_concepts import bf16_matmul_is_faster, layer_components

    lm = tunescope.load(model)
    words = list(tunescope.data.frequent_words(n_words).words)
    gc.collect()          # settle the heap the load left (as a study's runner does after a load)
    start = time.perf_counter()
    with torch.no_grad():
        for layer in range(lm.anatomy.n_layers):
            layer_components(lm.anatomy.mlp_down_weight(layer))
    t_svd = time.perf_counter() - start
    config = dataclasses.replace(get("ffn_concepts").make_config(), labeller=labeller)
    start = time.perf_counter()
    result = ffn_concepts(lm, words, config)
    t_w3 = time.perf_counter() - start
    return {"svd": t_svd, "w3": t_w3, "layers": lm.anatomy.n_layers,
            "shape": f"{lm.anatomy.d_mlp} x {lm.anatomy.d_model}", "words": len(words),
            "threads": torch.get_num_threads(), "bf16_screen": bf16_matmul_is_faster(),
            "described": result.summary["components_described"]}


def fresh(model: str, n_words: int, labeller: str) -> dict:
    """:func:`one_round` in a new Python process."""
    out = subprocess.run([sys.executable, __file__, "--one-round", labeller, "--model", model,
                          "--words", str(n_words)], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"a round failed: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--words", type=int, default=26000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--one-round", choices=["none", "offline"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_round:
        print(json.dumps(one_round(args.model, args.words, args.one_round)))
        return
    plain, labelled = [], []
    for i in range(args.rounds):
        p, q = fresh(args.model, args.words, "none"), fresh(args.model, args.words, "offline")
        plain.append(p["w3"] / p["svd"])
        labelled.append(q["w3"] / q["svd"])
        print(f"round {i + 1}: SVDs alone {p['svd']:.2f} s, W3 {p['w3']:.2f} s = {plain[-1]:.2f}x; "
              f"SVDs alone {q['svd']:.2f} s, W3 with offline labels {q['w3']:.2f} s = "
              f"{labelled[-1]:.2f}x")
    print(f"model {args.model}: {p['layers']} layers, down-projection {p['shape']}, "
          f"{p['words']} words, rank 300 ({p['described']} components described), "
          f"{p['threads']} threads, bfloat16 screen {'on' if p['bf16_screen'] else 'off'}")
    print(f"median over {args.rounds} rounds: W3 (SVDs, explained variance, top 50 words of "
          f"300 components per layer) {statistics.median(plain):.2f}x the SVDs alone "
          f"(target <= 2x); with the offline labeller (5 runs) "
          f"{statistics.median(labelled):.2f}x")


if __name__ == "__main__":
    main()
