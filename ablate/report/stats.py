"""Summary statistics for reports: pure functions over the results table.

Kept free of plotting and HTML so the numbers can be tested on their own;
paired tests and Holm live in paired.py, effects and fANOVA in effects.py.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

COMPLETE = "complete"


def mean_ci(values: Iterable[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of the mean, ignoring NaN.

    Seeds are few (3-5), so a t interval rather than a normal one. With fewer
    than two finite values the interval is undefined and returned as NaN.
    """
    arr = np.asarray(list(values), dtype=float)
    arr = arr[np.isfinite(arr)]
    n = arr.size
    if n == 0:
        return (math.nan, math.nan, math.nan)
    mean = float(arr.mean())
    if n < 2:
        return (mean, math.nan, math.nan)
    sem = float(arr.std(ddof=1)) / math.sqrt(n)
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * sem
    return (mean, mean - half, mean + half)


def t_two_sided_p(t: float, df: int) -> float:
    """Two-sided p-value of a t statistic (scipy.stats.ttest_rel's, from the same function)."""
    from scipy import special  # here: the figure workers load this module, never scipy (0.1 s)

    return float(2.0 * special.stdtr(df, -abs(t)))


@functools.lru_cache(maxsize=1024)
def t_quantile(q: float, df: int) -> float:
    """Student-t quantile, cached: reports ask for the same few (q, df) hundreds of times.
    scipy.special, not scipy.stats (1.5 s to import, for the same function)."""
    from scipy import special  # here: the figure workers load this module, never scipy (0.1 s)

    return float(special.stdtrit(df, q))


def count_reasons(reasons: Iterable[object]) -> list[tuple[str, int]]:
    """Count stop reasons, most frequent first (ties alphabetical), skipping blanks."""
    counts = Counter(str(r) for r in reasons if is_present(r))
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def format_reasons(counts: Sequence[tuple[str, int]]) -> str:
    """Render reason counts the way the leaderboard shows them: "a x2, b x1"."""
    return ", ".join(f"{reason} x{n}" for reason, n in counts)


def factor_columns(table: pd.DataFrame, factors: Sequence[str]) -> list[str]:
    """Factor columns plus their conditional sub-parameters ("dropout.rate").

    Sub-parameters are found by the "<factor>." prefix so the report shows the
    full configuration of an arm without the caller listing them.
    """
    cols: list[str] = []
    for f in factors:
        if f in table.columns and f not in cols:
            cols.append(f)
        for c in table.columns:
            if isinstance(c, str) and c.startswith(f"{f}.") and c not in cols:
                cols.append(c)
    return cols


def arm_order(table: pd.DataFrame, arms: Sequence[str]) -> list[str]:
    """Arms in design order, then any arm that appears only in the table."""
    order = [str(a) for a in arms]
    if "arm" in table.columns:
        for a in table["arm"].astype(str):
            if a not in order:
                order.append(a)
    return order


def leaderboard(table: pd.DataFrame, arms: Sequence[str], factors: Sequence[str]) -> pd.DataFrame:
    """One row per arm, best mean VALIDATION accuracy first, arms with no completed run last.

    Ranked on validation accuracy, the split used to choose, never on test accuracy,
    which is reported and would otherwise be chosen on. Failed runs are excluded from
    every mean but counted in ``n_failed`` so a fragile arm cannot look good by losing
    its bad seeds. Ties keep design order.
    """
    factors = factor_columns(table, factors)
    metrics = {c: _col(table, c) for c in (*LEADERBOARD_METRICS, "epochs")}
    done_mask = (
        (table["status"] == COMPLETE).to_numpy() if "status" in table.columns else np.ones(len(table), dtype=bool)
    )
    where: dict[str, list[int]] = {}
    for i, a in enumerate(table["arm"].astype(str) if "arm" in table.columns else []):
        where.setdefault(a, []).append(i)
    columns = {c: table[c].tolist() for c in (*factors, "stop_reason") if c in table.columns}
    rows = [
        _board_row(columns, arm, pos, np.array(where.get(arm, []), dtype=int), done_mask, metrics, factors)
        for pos, arm in enumerate(arm_order(table, arms))
    ]
    board = pd.DataFrame(rows)
    if board.empty:
        return board
    board["_missing"] = board["val_mean"].isna()
    board = board.sort_values(["_missing", "val_mean", "design_index"], ascending=[True, False, True], kind="mergesort")
    return board.drop(columns="_missing").reset_index(drop=True)


# What a mean can be: an interval cut to these keeps its coverage (the mean lies inside
# them), and no longer shows accuracies below 0% or above 100%. NaN stays NaN (max/min
# with NaN first keep it).
BOUNDS = {"test_accuracy": (0.0, 1.0), "val_accuracy": (0.0, 1.0), "train_accuracy": (0.0, 1.0), "gap": (-1.0, 1.0)}

LEADERBOARD_METRICS = {
    "test_accuracy": "test",
    "gap": "gap",
    "loss_gap": "loss_gap",
    "val_accuracy": "val",
    "train_accuracy": "train",
}


def _board_row(
    columns: dict[str, list],
    arm: str,
    pos: int,
    idx: np.ndarray,
    done_mask: np.ndarray,
    metrics: dict[str, np.ndarray],
    factors: Sequence[str],
) -> dict:
    """One arm's leaderboard row from the positions of its runs in the table's columns."""
    done = idx[done_mask[idx]] if idx.size else idx
    row: dict = {"arm": arm, "design_index": pos}
    for f in factors:
        row[f] = next((columns[f][i] for i in idx if is_present(columns[f][i])), None)
    row["n_complete"], row["n_failed"], row["n_runs"] = done.size, idx.size - done.size, idx.size
    for col, key in LEADERBOARD_METRICS.items():
        mean, low, high = mean_ci(metrics[col][done])
        if col in BOUNDS:  # the t interval of 2-3 seeds can reach past what the metric can be
            low, high = max(low, BOUNDS[col][0]), min(high, BOUNDS[col][1])
        row[f"{key}_mean"], row[f"{key}_low"], row[f"{key}_high"] = mean, low, high
    epochs = metrics["epochs"][done]
    row["epochs_mean"] = float(np.nanmean(epochs)) if np.isfinite(epochs).any() else math.nan
    reasons = count_reasons(columns["stop_reason"][i] for i in done) if "stop_reason" in columns else []
    row["stop_reasons"] = format_reasons(reasons)
    row["stop_reason_counts"] = dict(reasons)
    return row


def per_arm_values(table: pd.DataFrame, column: str) -> dict[str, np.ndarray]:
    """Finite values of ``column`` from completed runs, per arm (for seed points in figures)."""
    out: dict[str, np.ndarray] = {}
    if "arm" not in table.columns:
        return out
    done = table[table["status"] == COMPLETE] if "status" in table.columns else table
    for arm, grp in done.groupby(done["arm"].astype(str), sort=False):
        vals = _col(grp, column)
        out[str(arm)] = vals[np.isfinite(vals)]
    return out


def _col(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A numeric column as floats; missing column or junk becomes NaN."""
    if column not in frame.columns:
        return np.full(len(frame), math.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)


def is_present(value: object) -> bool:
    """True unless None, NaN or an empty string (conditional columns are often empty)."""
    if value is None or (isinstance(value, str) and value == ""):
        return False
    try:
        return not bool(pd.isna(value))
    except (TypeError, ValueError):  # list-like values are present
        return True
