"""Draw docs/benchmarks.svg from docs/benchmarks.csv: each measured speed ratio (tunescope's
throughput / the baseline's, log scale) as a bar, with its goal.

    python benchmarks/figure.py

The CSV (columns ``figure``, ``kind`` (``peer`` or ``in-house``), ``ratio``, ``goal``) is written
by hand from the benchmark scripts' printed lines; docs/benchmarks.md says which script and
command gives each.
"""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DOCS = Path(__file__).resolve().parents[1] / "docs"
COLORS = {"peer": "#1f77b4", "in-house": "#7f7f7f"}


def main() -> None:
    with open(DOCS / "benchmarks.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    rows.reverse()                                        # first row on top
    fig, ax = plt.subplots(figsize=(7.5, 0.36 * len(rows) + 1.2))
    y = range(len(rows))
    ratios = [float(r["ratio"]) for r in rows]
    ax.barh(list(y), ratios, color=[COLORS[r["kind"]] for r in rows], height=0.6)
    for i, r in zip(y, rows):
        if r["goal"]:
            ax.plot([float(r["goal"])] * 2, [i - 0.35, i + 0.35], color="#d62728", lw=2)
        ax.text(float(r["ratio"]) * 1.08, i, f"{float(r['ratio']):.2f}x", va="center", fontsize=8)
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_xscale("log")
    ax.set_yticks(list(y), [r["figure"] for r in rows], fontsize=8)
    ax.set_xlabel("speed ratio, tunescope / baseline (log scale; red: goal; 1 = equal)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in COLORS.values()]
    ax.legend(handles, ["against a peer tool", "against an in-repository baseline"],
              fontsize=8, loc="lower right")
    ax.set_xlim(0.5, max(ratios) * 3)
    fig.tight_layout()
    fig.savefig(DOCS / "benchmarks.svg", format="svg")
    print(f"wrote {DOCS / 'benchmarks.svg'} ({len(rows)} figures)")


if __name__ == "__main__":
    main()
