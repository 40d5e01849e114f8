"""Compare two results.csv files column by column, ignoring timings and trial
numbers: the check that a refactor left every run's numbers unchanged.

    python benchmarks/compare_results.py BEFORE/results.csv AFTER/results.csv
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

IGNORED = {"seconds", "trial"}


def main(before_path: str, after_path: str) -> int:
    before, after = pd.read_csv(before_path), pd.read_csv(after_path)
    keys = ["arm", "seed"]
    merged = before.merge(after, on=keys, suffixes=("_before", "_after"), how="outer", indicator=True)
    missing = merged[merged["_merge"] != "both"]
    if len(missing):
        print(f"runs in only one file:\n{missing[keys + ['_merge']]}")
        return 1
    common = [c for c in before.columns if c in after.columns and c not in IGNORED | set(keys)]
    bad = []
    for col in common:
        a, b = merged[f"{col}_before"], merged[f"{col}_after"]
        if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
            same = np.isclose(a.astype(float), b.astype(float), rtol=1e-5, atol=0, equal_nan=True)
        else:
            same = (a.fillna("").astype(str) == b.fillna("").astype(str)).to_numpy()
        if not same.all():
            bad.append(col)
    only = sorted(set(before.columns) ^ set(after.columns))
    print(
        f"{len(merged)} runs; {len(common)} columns compared (ignored: {sorted(IGNORED)}); "
        f"columns in one file only: {only or 'none'}"
    )
    print("identical" if not bad else f"DIFFERENT in: {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
