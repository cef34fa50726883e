"""W3 ffn_concepts for all layers against the SVDs alone, in this process.

    .venv/bin/python benchmarks/ffn_concepts_speed.py [--model gemma-3-270m] [--words 26000]

Target (issue 6): the whole analysis (SVDs, explained variance, top words of 300 components per
layer, offline labels of 5 runs) completes within 2x the time of the per-layer SVDs alone.
"""

import argparse
import time

import torch

import tunescope
from tunescope.analyses import ffn_concepts, get
from tunescope.analyses.ffn_concepts import layer_components


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--words", type=int, default=26000)
    args = parser.parse_args()
    lm = tunescope.load(args.model)
    words = list(tunescope.data.frequent_words(args.words).words)
    start = time.perf_counter()
    with torch.no_grad():
        for layer in range(lm.anatomy.n_layers):
            layer_components(lm.anatomy.mlp_down_weight(layer))
    t_svd = time.perf_counter() - start
    start = time.perf_counter()
    result = ffn_concepts(lm, words, get("ffn_concepts").make_config())
    t_all = time.perf_counter() - start
    print(f"model {args.model}: {lm.anatomy.n_layers} layers, down-projection {lm.anatomy.d_mlp} x "
          f"{lm.anatomy.d_model}, {len(words)} words, rank 300, {torch.get_num_threads()} threads")
    print(f"SVDs alone: {t_svd:.1f} s; whole analysis: {t_all:.1f} s; ratio {t_all / t_svd:.2f}x "
          f"(target <= 2x)")
    print({k: v for k, v in result.summary.items() if not isinstance(v, (list, dict))})


if __name__ == "__main__":
    main()
