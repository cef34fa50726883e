"""W1 instruction scores from the stored attribution levels of the Wu et al. 2024 release.

    .venv/bin/python benchmarks/wu2024_scores.py [--data DIR] [--b 7] [--p 4]

No model is loaded: the release's level matrices (LLaMA-7B and Vicuna-7B, prompt x response
tokens, levels 0-10) are thresholded at b, turned into densities (p-norm) and scored on the
instruction tokens of FinalDataset.tsv. Prints, per prompt source (self-instruct, lima, mt-bench):

1. mean / std / n of the instruction score per model at b, and the one-sided Welch test
   LLaMA < Vicuna;
2. Vicuna's scores split by the ratings of AnnotatedDataset.tsv (followed = rating 2-4,
   unfollowed = 1; unrated rows and responses under 5 tokens dropped), with the one-sided
   Welch test followed > unfollowed;
3. the per-source mean score for b = 0..9 (rows) x (source, model) (columns).

Prompts whose stored response is empty (no response token) have no score and are left out;
their number is printed. The data directory defaults to ../shared/data/wu2024 beside the repo.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from tunescope.analyses.instruction_score import score_from_levels, welch_one_sided
from tunescope.data.instructions import followed_labels, load_annotations, read_wu2024
from tunescope.data.wu2024_levels import load_levels, piece_instruction_mask

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "wu2024"
MODELS = (("LLaMA-7B", "llama_7b"), ("Vicuna-7B", "vicuna_7b"))
SOURCES = ("self-instruct", "lima", "mt-bench")
B_RANGE = range(10)


def _stats(x) -> tuple[float, float, int]:
    x = np.asarray(x, dtype=float)
    return (float(x.mean()) if len(x) else float("nan"),
            float(x.std(ddof=1)) if len(x) > 1 else float("nan"), len(x))


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def score_table(data: Path, p: float) -> tuple[pd.DataFrame, dict]:
    """One row per (model, prompt): source, n_instr, n_prompt, n_response, score_b0..score_b9."""
    prompts, report = read_wu2024(data / "FinalDataset.tsv")
    by_id = {pr.id: pr for pr in prompts}
    rows, stored = [], {}
    for label, stem in MODELS:
        levels = load_levels(data / f"{stem}_levels.npz", data / f"{stem}_tokens.jsonl")
        stored[label] = levels
        for pid, att in levels.items():
            prompt = by_id[pid]
            mask = piece_instruction_mask(att.prompt_pieces, prompt)
            row = {"model": label, "id": pid, "source": prompt.source,
                   "n_prompt": att.levels.shape[0], "n_instr": int(mask.sum()),
                   "n_response": att.levels.shape[1]}
            for b in B_RANGE:
                row[f"score_b{b}"] = (score_from_levels(att.levels, mask, b=b, p=p)
                                      if att.levels.shape[1] else np.nan)
            rows.append(row)
    return pd.DataFrame(rows), {"report": report, "stored": stored}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--b", type=int, default=7)
    parser.add_argument("--p", type=float, default=4.0)
    args = parser.parse_args(argv)
    if not (args.data / "FinalDataset.tsv").exists():
        sys.exit(f"no Wu et al. data at {args.data}")
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df, extra = score_table(args.data, args.p)
    rep = extra["report"]
    col = f"score_b{args.b}"
    print(f"FinalDataset: {rep.prompts} prompts, {rep.with_span} with an instruction span, "
          f"{len(rep.unmatched)} of {rep.fragments} instruction fragments unmatched")
    for label, _ in MODELS:
        sub = df[df.model == label]
        empty = sub[sub.n_response == 0]
        frac = (sub.n_instr / sub.n_prompt).mean()
        left = f" (left out: {', '.join(empty.id)})" if len(empty) else ""
        print(f"{label}: {len(sub)} prompts, {len(empty)} with an empty response{left}; "
              f"instruction tokens = {frac:.1%} of prompt tokens on average")

    print(f"\n== Instruction score at b = {args.b}, p = {args.p:g} (mean / std / n); "
          "Welch one-sided LLaMA < Vicuna")
    table = []
    for source in SOURCES + ("all",):
        sel = df if source == "all" else df[df.source == source]
        row = {"source": source}
        vals = {}
        for label, _ in MODELS:
            x = sel[sel.model == label][col].dropna()
            vals[label] = x
            m, s, n = _stats(x)
            row[f"{label} mean"], row[f"{label} std"], row[f"{label} n"] = m, s, n
        t, pv = welch_one_sided(vals["LLaMA-7B"], vals["Vicuna-7B"], "less")
        row["t"], row["p (L<V)"] = t, f"{pv:.2g}"
        table.append(row)
    print(pd.DataFrame(table).to_string(index=False, float_format=lambda v: f"{v:.4f}"))

    ann = load_annotations(args.data / "AnnotatedDataset.tsv")
    lab = followed_labels(ann, "vicuna")
    vic = df[df.model == "Vicuna-7B"].set_index("id")
    lab = lab[lab.id.isin(vic.index)].copy()
    lab["source"] = vic.loc[lab.id, "source"].to_numpy()
    lab["score"] = vic.loc[lab.id, col].to_numpy()
    stored = extra["stored"]["Vicuna-7B"]
    same = np.mean([_norm(stored[i].response_text) == _norm(r)
                    for i, r in zip(lab.id, lab.Response)])
    vic_rows = ann[ann.Model.str.lower().str.startswith("vicuna")]
    print(f"\n== Vicuna-7B by rating (AnnotatedDataset.tsv: {len(vic_rows)} Vicuna rows, "
          f"{len(lab)} rated with >= 5 tokens; stored response == rated response for "
          f"{same:.1%} of them); Welch one-sided followed > unfollowed")
    table = []
    for source in SOURCES + ("all",):
        sel = lab if source == "all" else lab[lab.source == source]
        f = sel[sel.followed].score.dropna()
        u = sel[~sel.followed].score.dropna()
        (fm, fs, fn), (um, us, un) = _stats(f), _stats(u)
        t, pv = welch_one_sided(f, u, "greater")
        table.append({"source": source, "followed mean": fm, "followed std": fs,
                      "followed n": fn, "unfollowed mean": um, "unfollowed std": us,
                      "unfollowed n": un, "t": t, "p (F>U)": f"{pv:.2g}"})
    print(pd.DataFrame(table).to_string(index=False, float_format=lambda v: f"{v:.4f}"))

    print("\n== Sensitivity: mean instruction score by threshold b (rows) x (source, model)")
    sens = {}
    for source in SOURCES:
        for label, _ in MODELS:
            sel = df[(df.source == source) & (df.model == label)]
            sens[(source, label.split("-")[0])] = [sel[f"score_b{b}"].mean() for b in B_RANGE]
    sens_df = pd.DataFrame(sens, index=pd.Index(list(B_RANGE), name="b"))
    print(sens_df.to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"\n{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
