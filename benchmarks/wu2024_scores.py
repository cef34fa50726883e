r"""W1 instruction scores from the stored attribution levels of the Wu et al. 2024 release.

    .venv/bin/python benchmarks/wu2024_scores.py [--data DIR] [--b 7] [--p 4]

No model is loaded: the release's level matrices (LLaMA-7B and Vicuna-7B, prompt x response
tokens, levels 0-10) are thresholded at b, turned into densities (p-norm) and scored on the
instruction tokens of FinalDataset.tsv. Prints, per prompt source (self-instruct, lima, mt-bench):

1. mean / std / n of the instruction score per model at b, and the one-sided Welch test
   LLaMA < Vicuna (Table 1 of the study, lower half);
2. Vicuna's scores split by the ratings of AnnotatedDataset.tsv (followed = rating 2-4,
   unfollowed = 1), with the one-sided Welch test followed > unfollowed (Table 1, upper half);
3. the per-source mean score for b = 0..9 (rows) x (source, model) (columns).

Tables 1 and 2 apply the selection and scoring of the study's released code
(JacksonWuxs/Interpret_Instruction_Tuning_LLMs, src/analysis_following_hypothesis.py and
src/analysis_following_ability_after_IFT.py, with src/utils.py):

* instruction tokens (:func:`release_sentences`, :func:`release_instruction_mask`): every
  instruction fragment (split on ``|||`` and newlines, then into sentences with
  ``(?<=[.!?:])\s+``) selects the first prompt sentence (prompt split on newlines, then the same
  way) that contains it verbatim, minus a leading ``Input:``; an empty fragment selects the first
  sentence. Each selected sentence masks its first occurrence in the prompt's pieces, without
  leading / trailing ``▁``, ``<0x0A>`` and ``▁"`` pieces (the code tokenizes the sentence and
  searches the pieces);
* score: levels ``<= b`` zeroed, density ``l1 / (l_p + 1e-9)`` per prompt token, divided by
  ``max + 1e-9``, summed over the mask and divided by ``log2(2 + n_instr)``; an empty response
  scores 0.0 and is kept;
* followed vs unfollowed: the ``vicuna_7B`` rows of AnnotatedDataset.tsv with a rating > 0 (the
  file has -1 and 1-4 only) whose stored response has >= 5 response tokens (pieces of the
  attribution, not the rated text); ratings 2-4 followed, 1 unfollowed; grouped by source;
* LLaMA vs Vicuna: all 632 prompts of each model;
* std with ddof = 0 (NumPy's default); Welch's t-test (``equal_var=False``), one-sided. The
  ``all`` rows pool the three sources; the released code prints per source only.

The data directory defaults to ../shared/data/wu2024 beside the repo.
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

from tunescope.analyses.helpers.instruction_score import (
    density,
    instruction_score,
    normalise_density,
    sparsify,
)
from tunescope.data.instructions import (
    find_lenient,
    followed_labels,
    load_annotations,
    read_wu2024,
)
from tunescope.data.wu2024_levels import decode_pieces, load_levels
from tunescope.stats.welch import welch_one_sided

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "wu2024"
MODELS = (("LLaMA-7B", "llama_7b"), ("Vicuna-7B", "vicuna_7b"))
SOURCES = ("self-instruct", "lima", "mt-bench")
B_RANGE = range(10)
MIN_RESPONSE_TOKENS = 5
RELEASE_EPS = 1e-9
_SENTENCE_BREAK = re.compile(r"(?<=[.!?:])\s+")
_TRIMMED = frozenset({"\u2581", "<0x0A>", '\u2581"'})


def _stats(x) -> tuple[float, float, int]:
    """mean, std (ddof = 0, as the released code) and n."""
    x = np.asarray(x, dtype=float)
    return (float(x.mean()) if len(x) else float("nan"),
            float(x.std(ddof=0)) if len(x) else float("nan"), len(x))


def release_decode(cell: str) -> str:
    """A FinalDataset.tsv cell decoded as the released code does: ``/t`` and ``/n`` -> tab and
    newline, one pair of wrapping quotes dropped, ``""`` -> ``"``."""
    cell = cell.replace("/t", "\t").replace("/n", "\n")
    if cell.startswith('"') and cell.endswith('"'):
        cell = cell[1:-1]
    return cell.replace('""', '"')


def read_release_rows(path: Path) -> dict[str, tuple[str, str]]:
    """id -> (prompt, Instruct&Context cell), both decoded by :func:`release_decode`."""
    rows = {}
    with open(path, encoding="utf8") as f:
        f.readline()
        for line in f:
            if len(line) == 1:
                continue
            pid, prompt, _, cell = line.rstrip("\n").split("\t")[:4]
            rows[pid] = (release_decode(prompt), release_decode(cell))
    return rows


def release_sentences(prompt: str, cell: str) -> set[str]:
    """The instruction sentences of a prompt as the released code picks them (see above)."""
    sentences = [s for line in prompt.split("\n") for s in _SENTENCE_BREAK.split(line)]
    picked = set()
    for fragment in cell.split("&&&")[0].replace("\n", "|||").split("|||"):
        for part in _SENTENCE_BREAK.split(fragment):
            hit = next((s for s in sentences if part in s), None)
            if hit is None:
                raise ValueError(f"instruction fragment {part!r} is in no prompt sentence")
            picked.add(hit[6:].strip() if hit.startswith("Input:") else hit)
    return picked


def release_instruction_mask(pieces, sentences) -> np.ndarray:
    """Bool ``[P]``: the pieces of the first occurrence of each sentence in the decoded pieces,
    leading / trailing ``▁``, ``<0x0A>`` and ``▁"`` pieces left out."""
    text, ranges = decode_pieces(pieces)
    mask = np.zeros(len(pieces), dtype=bool)
    for sent in sentences:
        if not sent:
            continue
        a = text.find(sent)
        found = (a, a + len(sent)) if a >= 0 else find_lenient(text, sent)
        if found is None:
            raise ValueError(f"instruction sentence {sent!r} is not in the prompt pieces")
        a, b = found
        idx = [k for k, (s, e) in enumerate(ranges) if s < b and a < e]
        while idx and pieces[idx[0]] in _TRIMMED:
            idx = idx[1:]
        while idx and pieces[idx[-1]] in _TRIMMED:
            idx = idx[:-1]
        mask[idx] = True
    return mask


def release_score(levels, mask, b: int, p: float) -> float:
    """The released code's instruction score; 0.0 for an empty response."""
    if levels.shape[1] == 0:
        return 0.0
    d = normalise_density(density(sparsify(levels, b), p, eps=RELEASE_EPS), eps=RELEASE_EPS)
    return instruction_score(d, mask)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def score_table(data: Path, p: float) -> tuple[pd.DataFrame, dict]:
    """One row per (model, prompt): source, n_instr, n_prompt, n_response, score_b0..score_b9."""
    prompts, report = read_wu2024(data / "FinalDataset.tsv")
    by_id = {pr.id: pr for pr in prompts}
    raw = read_release_rows(data / "FinalDataset.tsv")
    sentences = {pid: release_sentences(*raw[pid]) for pid in raw}
    rows, stored = [], {}
    for label, stem in MODELS:
        levels = load_levels(data / f"{stem}_levels.npz", data / f"{stem}_tokens.jsonl")
        stored[label] = levels
        for pid, att in levels.items():
            prompt = by_id[pid]
            mask = release_instruction_mask(att.prompt_pieces, sentences[pid])
            row = {"model": label, "id": pid, "source": prompt.source,
                   "n_prompt": att.levels.shape[0], "n_instr": int(mask.sum()),
                   "n_response": att.levels.shape[1]}
            for b in B_RANGE:
                row[f"score_b{b}"] = release_score(att.levels, mask, b, p)
            rows.append(row)
    return pd.DataFrame(rows), {"report": report, "stored": stored}


def model_table(df: pd.DataFrame, col: str) -> pd.DataFrame:
    """Per source (and ``all``): mean / std (ddof 0) / n of ``col`` per model, and Welch's
    one-sided t-test LLaMA < Vicuna."""
    table = []
    for source in SOURCES + ("all",):
        sel = df if source == "all" else df[df.source == source]
        row = {"source": source}
        vals = {}
        for label, _ in MODELS:
            x = sel[sel.model == label][col]
            vals[label] = x
            m, s, n = _stats(x)
            row[f"{label} mean"], row[f"{label} std"], row[f"{label} n"] = m, s, n
        t, pv = welch_one_sided(vals["LLaMA-7B"], vals["Vicuna-7B"], "less")
        row["t"], row["p (L<V)"] = t, pv
        table.append(row)
    return pd.DataFrame(table)


def followed_rows(df: pd.DataFrame, ann: pd.DataFrame, col: str) -> pd.DataFrame:
    """The rated Vicuna rows the released code keeps (rating > 0, >= 5 response tokens of the
    stored attribution), with ``followed``, ``source`` and ``score`` (from ``col``)."""
    vic = df[df.model == "Vicuna-7B"].set_index("id")
    ann = ann[ann.Model == "vicuna_7B"]
    lab = followed_labels(ann, "vicuna", MIN_RESPONSE_TOKENS,
                          token_counts=vic.n_response.to_dict())
    lab["source"] = vic.loc[lab.id, "source"].to_numpy()
    lab["score"] = vic.loc[lab.id, col].to_numpy()
    return lab


def followed_table(lab: pd.DataFrame) -> pd.DataFrame:
    """Per source (and ``all``): mean / std (ddof 0) / n of followed and unfollowed scores, and
    Welch's one-sided t-test followed > unfollowed (the released code tests unfollowed <
    followed: same p, opposite t)."""
    table = []
    for source in SOURCES + ("all",):
        sel = lab if source == "all" else lab[lab.source == source]
        f, u = sel[sel.followed].score, sel[~sel.followed].score
        (fm, fs, fn), (um, us, un) = _stats(f), _stats(u)
        t, pv = welch_one_sided(f, u, "greater")
        table.append({"source": source, "followed mean": fm, "followed std": fs,
                      "followed n": fn, "unfollowed mean": um, "unfollowed std": us,
                      "unfollowed n": un, "t": t, "p (F>U)": pv})
    return pd.DataFrame(table)


def _show(table: pd.DataFrame) -> str:
    table = table.copy()
    for c in table.columns:
        if c.startswith("p ("):
            table[c] = table[c].map(lambda v: f"{v:.2g}")
    return table.to_string(index=False, float_format=lambda v: f"{v:.4f}")


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
        kept = f" (scored 0.0: {', '.join(empty.id)})" if len(empty) else ""
        print(f"{label}: {len(sub)} prompts, {len(empty)} with an empty response{kept}; "
              f"instruction tokens = {frac:.1%} of prompt tokens on average")

    print(f"\n== Instruction score at b = {args.b}, p = {args.p:g} (mean / std ddof 0 / n); "
          "Welch one-sided LLaMA < Vicuna")
    print(_show(model_table(df, col)))

    ann = load_annotations(args.data / "AnnotatedDataset.tsv")
    lab = followed_rows(df, ann, col)
    stored = extra["stored"]["Vicuna-7B"]
    same = np.mean([_norm(stored[i].response_text) == _norm(r)
                    for i, r in zip(lab.id, lab.Response)])
    vic_rows = ann[ann.Model == "vicuna_7B"]
    rated = int((vic_rows.Rating > 0).sum())
    print(f"\n== Vicuna-7B by rating (AnnotatedDataset.tsv: {len(vic_rows)} vicuna_7B rows, "
          f"{rated} rated, {len(lab)} with >= {MIN_RESPONSE_TOKENS} response tokens; stored "
          f"response == rated response for {same:.1%} of them); Welch one-sided followed > "
          "unfollowed")
    print(_show(followed_table(lab)))

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
