"""Peak memory and time of loading a prepared bundled model, against its float32 weights.

Runs the load in a fresh subprocess so that the peak resident set size (ru_maxrss) belongs to
that load alone; the baseline is the same process after importing torch and transformers.

    .venv/bin/python benchmarks/load_memory.py [--model gemma-3-270m]

Target (issue 2): peak memory of load() from the prepared cache <= 1.5x the float32 weights.
"""

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import torch, transformers, tunescope
from tunescope.models import bundled
bundled.pull(sys.argv[1])                      # prepared beforehand: not part of the measure
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
lm = tunescope.load(sys.argv[1])
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
# safetensors maps the file lazily: read every weight once so that all of it is resident.
with torch.no_grad():
    for p in lm.model.parameters():
        p.sum()
touched = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
weights = sum(p.numel() * p.element_size() for p in lm.model.parameters())
print(json.dumps({"base_kib": base, "peak_kib": peak, "touched_kib": touched, "weights_bytes": weights, "seconds": seconds}))
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="gemma-3-270m")
    args = parser.parse_args()
    done = subprocess.run([sys.executable, "-c", CHILD, args.model], capture_output=True,
                          text=True, check=True)
    m = json.loads(done.stdout.strip().splitlines()[-1])
    grown = (m["peak_kib"] - m["base_kib"]) * 1024
    print(f"model: {args.model}")
    print(f"float32 weights: {m['weights_bytes'] / 2**20:.0f} MiB")
    print(f"peak RSS growth during load: {grown / 2**20:.0f} MiB")
    touched = (m["touched_kib"] - m["base_kib"]) * 1024
    print(f"peak RSS growth after reading every weight once: {touched / 2**20:.0f} MiB")
    print(f"load time from cache: {m['seconds']:.1f} s")
    print(f"peak memory / float32 weights: {max(grown, touched) / m['weights_bytes']:.2f}x "
          "(target <= 1.5x; the larger of the two peaks)")


if __name__ == "__main__":
    main()
