"""Are two run directories' tables the same? Every Parquet file under one (shards, combined
results, comparisons) is compared with the file of the same name under the other: byte for byte,
and, where the bytes differ, as tables (same columns, dtypes and values; NaN equal to NaN).

    python benchmarks/identical_runs.py RUN_A RUN_B

Prints one line per differing file and a last line ``N of M Parquet files identical (K
byte-identical)``; exits 1 when any file differs or is missing on one side. Used to show that a
refactoring changed no number: run the default study on both commits and compare.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd


def parquet_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*.parquet")
            if not any(part.startswith(".") for part in p.relative_to(root).parts)}


def same_table(a: Path, b: Path) -> str | None:
    """None when the two Parquet files hold equal tables, else what differs."""
    x, y = pd.read_parquet(a), pd.read_parquet(b)
    if list(x.columns) != list(y.columns):
        return f"columns {list(x.columns)} vs {list(y.columns)}"
    if list(x.dtypes) != list(y.dtypes):
        return f"dtypes {list(x.dtypes)} vs {list(y.dtypes)}"
    if len(x) != len(y):
        return f"{len(x)} vs {len(y)} rows"
    for column in x.columns:
        u, v = x[column], y[column]
        both_nan = u.isna() & v.isna()
        if not (both_nan | (u == v)).all():
            first = int((~(both_nan | (u == v))).to_numpy().nonzero()[0][0])
            return f"column {column!r}, row {first}: {u.iloc[first]!r} vs {v.iloc[first]!r}"
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    args = parser.parse_args(argv)
    names_a, names_b = parquet_files(args.a), parquet_files(args.b)
    differing = 0
    for name in sorted(names_a ^ names_b):
        print(f"only in {args.a if name in names_a else args.b}: {name}")
        differing += 1
    same_bytes = 0
    for name in sorted(names_a & names_b):
        pa, pb = args.a / name, args.b / name
        if pa.read_bytes() == pb.read_bytes():
            same_bytes += 1
            continue
        problem = same_table(pa, pb)
        if problem:
            print(f"differs: {name}: {problem}")
            differing += 1
    total = len(names_a | names_b)
    print(f"{total - differing} of {total} Parquet files identical ({same_bytes} byte-identical)")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
