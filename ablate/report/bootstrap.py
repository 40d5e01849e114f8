"""Uncertainty for descriptive summaries: a bootstrap over seeds.

Variance shares and the Pareto front are computed from arm means, so they always
name a winner, even when every arm is the same up to noise. Resampling the seeds
(the same resampled seeds for every arm, keeping the pairing) shows how much of
that winner is noise: a share with a wide interval, or an arm on the front in
half the resamples, is not a finding.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ablate.report.paired import seed_values

DRAWS = 200
SEED = 0


def seed_matrix(table: pd.DataFrame, arms: Sequence[str], metric: str) -> np.ndarray:
    """arms x seeds values of completed runs, NaN where a run is missing."""
    values = seed_values(table, metric)
    seeds = sorted({s for a in arms for s in values.get(a, {})}, key=str)
    return np.array([[values.get(a, {}).get(s, math.nan) for s in seeds] for a in arms], dtype=float)


def resampled_means(matrix: np.ndarray, draws: int = DRAWS, seed: int = SEED) -> np.ndarray:
    """draws x arms means over seeds drawn with replacement (NaN-aware)."""
    if matrix.size == 0:
        return np.zeros((0, matrix.shape[0]))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, matrix.shape[1], size=(draws, matrix.shape[1]))
    picked = matrix[:, idx]  # arms x draws x seeds
    with warnings.catch_warnings():  # an arm with no run in a resample stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(picked, axis=2).T


def front_mask(acc: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """Arms no other arm beats on both higher accuracy and lower gap (NaN arms are off).

    One sort, not a comparison of every pair: an arm is beaten when some arm of higher
    accuracy has a gap no wider, or one of equal accuracy a narrower gap."""
    ok = np.isfinite(acc) & np.isfinite(gap)
    out = np.zeros(acc.shape, dtype=bool)
    idx = np.flatnonzero(ok)
    if not idx.size:
        return out
    order = np.argsort(-acc[idx], kind="stable")
    a, g = acc[idx][order], gap[idx][order]
    starts = np.r_[0, np.flatnonzero(np.diff(a) != 0) + 1]  # runs of equal accuracy
    group_min = np.minimum.reduceat(g, starts)
    higher = np.r_[np.inf, np.minimum.accumulate(group_min)[:-1]]  # narrowest gap at higher accuracy
    group = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, a.size]))
    out[idx[order]] = ~((higher[group] <= g) | (group_min[group] < g))
    return out


def pareto_frequency(table: pd.DataFrame, arms: Sequence[str], draws: int = DRAWS) -> dict[str, float]:
    """{arm: share of seed resamples in which the arm is on the accuracy-gap front}."""
    acc = resampled_means(seed_matrix(table, arms, "test_accuracy"), draws)
    gap = resampled_means(seed_matrix(table, arms, "gap"), draws)
    if not len(acc):
        return {}
    hits = np.array([front_mask(a, g) for a, g in zip(acc, gap)])
    return {arm: float(f) for arm, f in zip(arms, hits.mean(axis=0))}


def variance_shares(
    means: np.ndarray, arm_levels: Sequence[Mapping[str, str]], factors: Sequence[str]
) -> dict[str, np.ndarray]:
    """Each factor's main-effect variance over its levels, normalised to sum to 1 over the factors,
    for each row of ``means`` (draws x arms).

    On a complete grid with every level equally likely this is the functional ANOVA
    decomposition of the arm means (what fANOVA estimates with a forest), normalised
    as optuna.importance.get_param_importances normalises it."""
    means = np.atleast_2d(means)
    raw = {}
    for f in factors:
        levels = sorted({lv[f] for lv in arm_levels})
        onehot = np.array([[lv[f] == x for lv in arm_levels] for x in levels], dtype=float)
        raw[f] = np.var(means @ (onehot / onehot.sum(axis=1, keepdims=True)).T, axis=1)
    total = sum(raw.values())
    with np.errstate(invalid="ignore", divide="ignore"):
        return {f: np.where(total > 0, v / total, math.nan) for f, v in raw.items()}


def share_intervals(
    table: pd.DataFrame,
    arms: Sequence[str],
    arm_levels: Sequence[Mapping[str, str]],
    factors: Sequence[str],
    draws: int = DRAWS,
) -> dict[str, tuple[float, float, float]]:
    """{factor: (share, 2.5th, 97.5th percentile over seed resamples)} of test accuracy."""
    matrix = seed_matrix(table, arms, "test_accuracy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        point = variance_shares(np.nanmean(matrix, axis=1), arm_levels, factors)
    boot = variance_shares(resampled_means(matrix, draws), arm_levels, factors)
    out = {}
    for f in factors:
        vals = boot[f][np.isfinite(boot[f])]
        lo, hi = np.percentile(vals, [2.5, 97.5]) if vals.size else (math.nan, math.nan)
        out[f] = (float(point[f][0]), float(lo), float(hi))
    return out
