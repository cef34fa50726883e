"""W2 attention heads: the vectorised analysis against a per-dimension Python loop.

    .venv/bin/python benchmarks/attention_heads_speed.py [--model smollm2-135m-instruct]
        [--words 10000] [--sample-dims 12]

Vocabulary: the first ``--words`` words of the study's list (../shared/data/wu2024/
SingleShareGPT_Vocab.tsv) when present, else wordfreq's. Similarity: the model's own
embeddings (same for both ways). The loop is timed on ``--sample-dims`` (head, dimension)
pairs spread over the layers and extrapolated to every dimension of every head and layer, as
stated in the output; its pairs are checked against the vectorised ones on that sample.
Target (issue 6): >= 20x faster, identical pairs on the sample.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import tunescope
from tunescope.analyses import get
from tunescope.analyses.attention_heads import (
    attention_heads,
    head_projections,
    layer_pairs,
    layer_pairs_reference,
    similarity_thresholds,
    unit_rows,
)
from tunescope.analyses.helpers.word_vectors import word_vectors

VOCAB = Path(__file__).resolve().parents[2] / "shared" / "data" / "wu2024" / "SingleShareGPT_Vocab.tsv"


def vocabulary(n):
    if VOCAB.is_file():
        words = [line.split("\t")[0] for line in VOCAB.read_text().splitlines()]
        words = [w for w in words if w.isalpha()]
        return list(dict.fromkeys(words))[:n], "SingleShareGPT_Vocab.tsv"
    from wordfreq import top_n_list
    return [w for w in top_n_list("en", 3 * n) if w.isalpha()][:n], "wordfreq"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--words", type=int, default=10000)
    parser.add_argument("--sample-dims", type=int, default=12)
    args = parser.parse_args()
    lm = tunescope.load(args.model)
    words, source = vocabulary(args.words)
    sim = lambda w: word_vectors(lm, w, "embed")  # noqa: E731
    config = get("attention_heads").make_config(similarity="model")
    start = time.perf_counter()
    result = attention_heads(lm, words, config, similarity_vectors=sim)
    t_fast = time.perf_counter() - start

    a = lm.anatomy
    unit = unit_rows(sim(words))
    thr = similarity_thresholds(unit, 3000)
    emb = word_vectors(lm, words, "embed")
    rng = np.random.default_rng(0)
    sample = [(int(rng.integers(a.n_layers)), int(rng.integers(a.n_heads)), int(rng.integers(a.d_head)))
              for _ in range(args.sample_dims)]
    t_loop, agree = 0.0, True
    for layer, head, rank in sample:
        with torch.no_grad():
            hq, hk = head_projections(lm, layer, emb)
        start = time.perf_counter()
        ref = layer_pairs_reference(hq, hk, unit, thr, 100, heads=[head], dims=[rank])
        t_loop += time.perf_counter() - start
        p = layer_pairs(hq, hk, unit, thr, 100)
        got = {(h, d, q, k) for h, d, r, q, k in zip(p.head, p.dim, p.dim_rank, p.word_q, p.word_k)
               if h == head and r == rank}
        agree &= got == ref
    total_dims = a.n_layers * a.n_heads * a.d_head
    t_loop_all = t_loop / len(sample) * total_dims
    print(f"model {args.model}: {a.n_layers} layers x {a.n_heads} heads x {a.d_head} dims = "
          f"{total_dims} dimensions; {len(words)} words ({source}); top-k 100; "
          f"{torch.get_num_threads()} threads")
    print(f"vectorised analysis, all layers: {t_fast:.1f} s ({result.summary['n_pairs']} pairs, "
          f"{result.summary['n_knowledge_pairs']} in more than one dimension)")
    print(f"per-dimension loop: {t_loop:.1f} s on a sample of {len(sample)} dimensions, "
          f"extrapolated to {total_dims}: {t_loop_all:.0f} s")
    print(f"speed-up (extrapolated): {t_loop_all / t_fast:.0f}x (target >= 20x); identical pairs on "
          f"the sample: {agree}")


if __name__ == "__main__":
    main()
