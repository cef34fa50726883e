"""C2 and C3 on the built-in sets with real models: the summary figures, and C2's forward-pass
count (one pass per sentence batch gives every layer and both poolings).

    .venv/bin/python benchmarks/consistency_real.py [--models gemma-3-270m smollm2-135m-instruct]
        [--save DIR]
"""

import argparse
import time

import tunescope
from tunescope.analyses import downstream_consistency, representation_consistency
from tunescope.engine.batching import default_batch_size, encode, length_buckets


def count_forward_calls(lm):
    """Wrap the model's forward to count calls; returns the counter list."""
    calls = []
    forward = lm.model.forward

    def counted(*args, **kwargs):
        calls.append(1)
        return forward(*args, **kwargs)

    lm.model.forward = counted
    return calls


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["gemma-3-270m", "smollm2-135m-instruct"])
    parser.add_argument("--save")
    args = parser.parse_args()
    pairs = tunescope.data.builtin_pairs() + tunescope.data.pararel_pairs(
        tunescope.data.pararel(y_last_only=False), max_pairs=160)
    task = tunescope.data.builtin_task()
    for name in args.models:
        lm = tunescope.load(name)
        calls = count_forward_calls(lm)
        start = time.perf_counter()
        c2 = representation_consistency(lm, pairs)
        t2 = time.perf_counter() - start
        sentences = list(dict.fromkeys(s for p in pairs for s in (p.a, p.b)))
        batches = len(length_buckets([len(i) for i in encode(lm, sentences)], default_batch_size(lm)))
        print(f"== {name}")
        print(f"C2: {len(pairs)} pairs, {len(sentences)} distinct sentences, "
              f"{lm.anatomy.n_layers + 1} layers x 2 poolings: {len(calls)} forward passes "
              f"for {batches} batches ({t2:.1f} s); each sentence runs once")
        summaries = c2.tables["summaries"]
        auc = summaries[(summaries["metric"] == "auc") & (summaries["scope"] == "all_layers")]
        print("  mean AUC over layers (95% CI), per pooling and source; lexical-overlap control:")
        print(auc[["pooling", "source", "value", "ci_low", "ci_high", "n_layers_used"]]
              .to_string(index=False, float_format="%.3f"))
        print(c2.tables["lexical"].to_string(index=False, float_format="%.3f"))
        for flag in c2.summary.get("flags", []):
            print(f"  flag: {flag}")
        calls.clear()
        start = time.perf_counter()
        c3 = downstream_consistency(lm, task)
        print(f"C3 ({time.perf_counter() - start:.1f} s), probe at block {c3.summary['probe_layer']}, "
              f"{c3.summary['probe_n_train']} train / {c3.summary['probe_n_test']} test:")
        print(c3.tables["metrics"].to_string(index=False, float_format="%.3f"))
        if args.save:
            c2.save(f"{args.save}/{name}/representation_consistency")
            c3.save(f"{args.save}/{name}/downstream_consistency")
        del lm


if __name__ == "__main__":
    main()
