"""W1 attribution: batched per-token gradients against the reference way, and peak memory.

    .venv/bin/python benchmarks/attribution_speed.py [--model gemma-3-270m] [--tokens 64]

Speed: a ``--tokens``-token prompt with a ``--tokens``-token response; the reference takes one
backward pass per response token (retain_graph, parameters requiring gradients, batch 1, full
logits); tunescope's engine takes batched backward passes with frozen parameters.
Target (issue 5): >= 3x faster, identical attributions (rtol 1e-4).

Memory: each configuration runs in a fresh subprocess; the peak resident set size during the
attribution (sampled every 5 ms) above the size just before it is printed for two chunk sizes
and two response lengths (target: bounded by the chunk, not by the response length).
"""

import argparse
import json
import subprocess
import sys
import time

import torch

import tunescope
from tunescope.engine.attribution import gradient_x_input

TEXT = ("Write a detailed, friendly letter to a new neighbour who has just moved into the house "
        "next door. Introduce yourself and your family, describe the neighbourhood, recommend "
        "two good places to eat nearby, mention when the rubbish is collected, and invite them "
        "to a small barbecue on Saturday afternoon in the garden behind the house. ") * 4


def token_ids(lm, n, offset=0):
    ids = lm.tokenizer(TEXT)["input_ids"]
    return ids[offset:offset + n]


def reference(lm, prompt_ids, response_ids):
    """One backward pass per response token, parameters requiring gradients, batch 1."""
    lm.model.requires_grad_(True)
    try:
        ids = torch.tensor([prompt_ids + response_ids])
        P = len(prompt_ids)
        embeds = lm.anatomy.embed(ids).detach().requires_grad_(True)
        logits = lm.model(inputs_embeds=embeds).logits[0]
        cols = []
        for t, y in enumerate(response_ids):
            embeds.grad = None
            torch.softmax(logits[P + t - 1], -1)[y].backward(retain_graph=True)
            cols.append((embeds.grad[0, :P] * embeds[0, :P]).sum(-1).detach())
        lm.model.zero_grad(set_to_none=True)
        return torch.stack(cols, 1)
    finally:
        lm.model.requires_grad_(False)


CHILD = r"""
import json, sys, threading, time
import torch, tunescope
from tunescope.engine.attribution import gradient_x_input
sys.path.insert(0, sys.argv[4])
from attribution_speed import token_ids

def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

lm = tunescope.load(sys.argv[1])
n, chunk = int(sys.argv[2]), int(sys.argv[3])
prompt, response = token_ids(lm, 64), token_ids(lm, n, 1)
gradient_x_input(lm, prompt[:8], response[:2], chunk=2)
before, peak, running = rss_mib(), [0.0], [True]

def sample():
    while running[0]:
        peak[0] = max(peak[0], rss_mib())
        time.sleep(0.005)

thread = threading.Thread(target=sample)
thread.start()
gradient_x_input(lm, prompt, response, chunk=chunk)
running[0] = False
thread.join()
print(json.dumps({"grown_mib": peak[0] - before}))
"""


def peak(model, n, chunk):
    from pathlib import Path
    done = subprocess.run([sys.executable, "-c", CHILD, model, str(n), str(chunk),
                           str(Path(__file__).parent)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["grown_mib"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--chunk", type=int, default=16)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-only", action="store_true")
    args = parser.parse_args()
    if args.memory_only:
        return memory(args.model)
    lm = tunescope.load(args.model)
    prompt, response = token_ids(lm, args.tokens), token_ids(lm, args.tokens, 1)
    gradient_x_input(lm, prompt[:8], response[:4], chunk=4)  # warm-up
    start = time.perf_counter()
    fast = gradient_x_input(lm, prompt, response, chunk=args.chunk)
    t_fast = time.perf_counter() - start
    start = time.perf_counter()
    ref = reference(lm, prompt, response)
    t_ref = time.perf_counter() - start
    rel = ((fast - ref).abs() / ref.abs().clamp_min(1e-12))
    ok = torch.allclose(fast, ref, rtol=1e-4, atol=1e-6 * float(ref.abs().max()))
    print(f"model {args.model}: prompt {len(prompt)} tokens, response {len(response)} tokens, "
          f"{torch.get_num_threads()} threads, float32")
    print(f"batched (chunk {args.chunk}, frozen parameters): {t_fast:.1f} s; reference (one "
          f"backward per token, retain_graph, parameters with gradients): {t_ref:.1f} s")
    print(f"speed-up: {t_ref / t_fast:.1f}x (target >= 3x)")
    print(f"identical within rtol 1e-4: {ok}; max |difference| {float((fast - ref).abs().max()):.2e} "
          f"(max |a| {float(ref.abs().max()):.2e}); median relative difference {float(rel.median()):.1e}")
    if args.skip_memory:
        return
    del lm
    memory(args.model)


def memory(model):
    print("peak RSS growth during attribution (64-token prompt):")
    for chunk in (8, 16):
        for n in (64, 128):
            print(f"  chunk {chunk:2d}, response {n:3d} tokens: {peak(model, n, chunk):7.0f} MiB")


if __name__ == "__main__":
    main()
