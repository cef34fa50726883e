"""W2 and W3 on the bundled models: top word pairs of the heads with the most pairs, verb share
tables (base against tuned), top words of the first components of three layers, and the
offline labeller's category shares.

    .venv/bin/python benchmarks/explanations_real.py [--words 26000] [--save DIR]

Vocabulary: the study's list (../shared/data/wu2024/SingleShareGPT_Vocab.tsv) when present,
else wordfreq's. The two bundled models differ in architecture, so the verb comparison is the
unpaired one by depth group (the output says so).
"""

import argparse
from pathlib import Path

import tunescope
from tunescope.analyses import attention_heads, ffn_concepts, get
from tunescope.compare.rotation import label_shares
from tunescope.compare.verb_share import compare_heads

VOCAB = Path(__file__).resolve().parents[2] / "shared" / "data" / "wu2024" / "SingleShareGPT_Vocab.tsv"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--words", type=int, default=26000)
    parser.add_argument("--base", default="gemma-3-270m")
    parser.add_argument("--tuned", default="smollm2-135m-instruct")
    parser.add_argument("--save")
    args = parser.parse_args()
    if VOCAB.is_file():
        vocab = tunescope.data.load_word_frequencies(VOCAB).words
    else:
        vocab = tunescope.data.frequent_words(args.words).words
    words = [w for w in vocab if w.isalpha()][:args.words]
    heads, shapes = {}, {}
    for name in (args.base, args.tuned):
        lm = tunescope.load(name)
        print(f"== {name}: {len(words)} words")
        w2 = attention_heads(lm, words, get("attention_heads").make_config())
        heads[name] = w2
        shapes[name] = {"n_layers": lm.anatomy.n_layers, "n_heads": lm.anatomy.n_heads,
                        "d_head": lm.anatomy.d_head}
        print("W2:", w2.summary)
        top = w2.tables["heads"].sort_values("n_pairs", ascending=False).head(3)
        for layer, head in zip(top["layer"], top["head"]):
            k = w2.tables["knowledge"]
            k = k[(k["layer"] == layer) & (k["head"] == head)].sort_values("n_dims", ascending=False)
            pairs = ", ".join(f"{a}-{b} ({n})" for a, b, n in zip(k["word_a"], k["word_b"], k["n_dims"]))
            print(f"  layer {layer} head {head}: {len(k)} pairs; top: {pairs[:400]}")
        w3 = ffn_concepts(lm, words, get("ffn_concepts").make_config())
        print("W3:", {k: v for k, v in w3.summary.items() if not isinstance(v, (list, dict))})
        n = lm.anatomy.n_layers
        for layer in (0, n // 2, n - 1):
            t = w3.tables["top_words"]
            for c in range(5):
                ws = t[(t["layer"] == layer) & (t["component"] == c)].sort_values("rank")["word"]
                print(f"  layer {layer} component {c}: {' '.join(ws.head(12))}")
        shares = label_shares(w3.tables["labels"], "category", n_layers=n)
        print(shares.pivot(index="group", columns="value", values="share").to_string(float_format="%.3f"))
        if args.save:
            w2.save(f"{args.save}/{name}/attention_heads")
            w3.save(f"{args.save}/{name}/ffn_concepts")
        del lm
    shares, tests, method = compare_heads(heads[args.base].tables["knowledge"],
                                          heads[args.tuned].tables["knowledge"],
                                          shapes[args.base], shapes[args.tuned])
    print(f"== verbs, {args.base} -> {args.tuned} ({method} comparison by depth group)")
    print(tests.to_string(index=False, float_format="%.3f"))


if __name__ == "__main__":
    main()
