"""Attention-knockout sweep (all layers x 3 block sets): batched engine against the reference
way (one forward pass per example, layer window and block set, batch 1), in this process.

    .venv/bin/python benchmarks/knockout_speed.py [--model gemma-3-270m] [--examples 50]

Examples: correctly answered queries of real ParaRel (P17 P36 P103 P176 P449, first facts).
Target (issue 4): >= 5x faster, identical numbers (atol 1e-5 on probabilities).
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import tunescope
from tunescope.analyses.helpers.recall_examples import select_examples
from tunescope.analyses.recall import (
    BLOCK_SETS,
    knockout_effects,
    knockout_keys,
    window_layers,
)
from tunescope.models.hooks import block_attention

PARAREL = Path(__file__).resolve().parents[2] / "shared" / "data" / "pararel"


@torch.inference_mode()
def reference(lm, examples, window):
    """Geva et al.'s way: every (example, layer, block set) its own full forward pass."""
    n_layers = lm.anatomy.n_layers
    probs = []
    for e in examples:
        ids = torch.tensor([e.input_ids])
        T = ids.shape[1]
        base = float(torch.softmax(lm.model(ids, logits_to_keep=1).logits[0, -1], -1)[e.target])
        for layer in range(n_layers):
            for block in BLOCK_SETS:
                edges = torch.zeros(1, T, T, dtype=torch.bool)
                edges[0, T - 1, knockout_keys(e, block)] = True
                with block_attention(lm, {l: edges for l in window_layers(layer, window, n_layers)}):
                    logits = lm.model(ids, logits_to_keep=1).logits[0, -1]
                probs.append((base, float(torch.softmax(logits, -1)[e.target])))
    return np.array(probs)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--examples", type=int, default=50)
    parser.add_argument("--window", type=int, default=9)
    args = parser.parse_args()
    lm = tunescope.load(args.model)
    relations = tunescope.data.pararel(["P17", "P36", "P103", "P176", "P449"], path=PARAREL,
                                       max_facts=100)
    examples, _ = select_examples(lm, relations, max_examples=args.examples)
    knockout_effects(lm, examples[:2], args.window)  # warm-up
    start = time.perf_counter()
    fast = knockout_effects(lm, examples, args.window)
    t_fast = time.perf_counter() - start
    start = time.perf_counter()
    ref = reference(lm, examples, args.window)
    t_ref = time.perf_counter() - start
    d_prob = np.abs(fast["probability"].to_numpy() - ref[:, 1]).max()
    d_base = np.abs(fast["probability_base"].to_numpy() - ref[:, 0]).max()
    rel_ref = 100 * (ref[:, 1] - ref[:, 0]) / ref[:, 0]
    d_rel = np.abs(fast["relative_change"].to_numpy() - rel_ref).max()
    n = len(fast)
    print(f"model {args.model}: {len(examples)} examples x {lm.anatomy.n_layers} layers x 3 block "
          f"sets = {n} counterfactual runs, window {args.window}, {torch.get_num_threads()} threads")
    print(f"batched engine: {t_fast:.1f} s; reference (batch 1, one pass per run): {t_ref:.1f} s")
    print(f"speed-up: {t_ref / t_fast:.1f}x (target >= 5x)")
    print(f"max |probability difference|: {d_prob:.2e} (base {d_base:.2e}); max |relative "
          f"change difference|: {d_rel:.2e} percentage points")


if __name__ == "__main__":
    main()
