"""How small a difference a study could detect, and how many seeds a difference needs.

A paired t-test over seeds (alpha two-sided): with n seeds and a standard deviation
sd of the per-seed differences, a true difference delta gives a t statistic
distributed as a noncentral t with n - 1 degrees of freedom and noncentrality
delta / sd * sqrt(n) (scipy.special.nctdtr, as scipy.stats.nct). Pure functions over the results table,
so `ablate plan` can print the same lines once runs exist.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import special  # scipy.stats.nct's functions, without importing scipy.stats

from ablate.report.blocks import fit
from ablate.report.paired import seed_values
from ablate.report.stats import t_quantile

ALPHA = 0.05
POWER = 0.80
MAX_SEEDS = 10_000


def paired_power(delta: float, sd: float, n: int, alpha: float = ALPHA) -> float:
    """Probability that a two-sided paired t-test over n seeds rejects when the true difference is delta."""
    if n < 2 or not sd > 0:
        return math.nan
    df = n - 1
    crit = t_quantile(1 - alpha / 2, df)
    ncp = abs(delta) / sd * math.sqrt(n)
    upper, lower = 1.0 - float(special.nctdtr(df, ncp, crit)), float(special.nctdtr(df, ncp, -crit))
    # scipy's noncentral t returns NaN deep in a tail for large ncp; that tail is then ~0.
    upper = upper if math.isfinite(upper) else float(ncp > crit)
    return upper + (lower if math.isfinite(lower) else 0.0)


def min_detectable(sd: float, n: int, power: float = POWER, alpha: float = ALPHA) -> float:
    """The smallest true difference detected with the given power (same unit as sd)."""
    if n < 2 or not sd > 0:
        return math.nan
    hi = sd
    while paired_power(hi, sd, n, alpha) < power:
        hi *= 2
    lo = 0.0
    while hi - lo > 1e-12 * hi:  # bisection: power rises with the difference
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if paired_power(mid, sd, n, alpha) < power else (lo, mid)
    return hi


def seeds_needed(
    delta: float, sd: float, power: float = POWER, alpha: float = ALPHA, max_seeds: int = MAX_SEEDS
) -> int | None:
    """The fewest seeds (at least 2) giving that power for delta; None beyond max_seeds."""
    if not sd > 0 or delta == 0:
        return None
    lo, hi = 2, 2
    while paired_power(delta, sd, hi, alpha) < power:
        if hi >= max_seeds:
            return None
        lo, hi = hi, min(hi * 2, max_seeds)
    while lo < hi:  # power grows with n: bisect for the first n that reaches it
        mid = (lo + hi) // 2
        if paired_power(delta, sd, mid, alpha) >= power:
            hi = mid
        else:
            lo = mid + 1
    return hi


def paired_spread(table: pd.DataFrame, baseline: str | None, metric: str = "test_accuracy") -> tuple[float, int]:
    """(SD of per-seed differences, seeds per comparison) observed in the study.

    With a baseline: the differences arm - baseline, their variances pooled over the
    arms (weighted by degrees of freedom). Without: sqrt(2) x the residual SD of the
    arm + seed block model, the SD of a difference of two arms on one seed.
    """
    values = seed_values(table, metric)
    counts = [len(v) for v in values.values()]
    if baseline and baseline in values:
        base = values[baseline]
        ss, df, ns = 0.0, 0, []
        for arm, per in values.items():
            if arm == baseline:
                continue
            d = np.array([per[s] - base[s] for s in per if s in base])
            if d.size >= 2:
                ss, df = ss + float(((d - d.mean()) ** 2).sum()), df + d.size - 1
                ns.append(d.size)
        return (math.sqrt(ss / df) if df else math.nan), (int(np.median(ns)) if ns else 0)
    model = fit(values)
    sd = math.sqrt(2 * model.mse) if math.isfinite(model.mse) else math.nan
    return sd, int(np.median(counts)) if counts else 0


def power_lines(table: pd.DataFrame, baseline: str | None, differences: Sequence[float] = (0.01, 0.005)) -> list[str]:
    """Plain sentences: the smallest detectable difference in test accuracy at 80% power,
    and the seeds each of ``differences`` (fractions: 0.01 = 1 point) would need."""
    sd, n = paired_spread(table, baseline)
    against = f"an arm and {baseline}" if baseline else "two arms"
    if n < 2 or not math.isfinite(sd):
        return ["Power: not computable; it needs at least two seeds per arm with completed runs."]
    if sd == 0:
        return ["Power: the per-seed differences do not vary at all, so there is no spread to plan with."]
    mde = min_detectable(sd, n)
    lines = [
        f"Power (paired t-test over seeds, α = {ALPHA:g} two-sided, {POWER:.0%} power): with {n} seeds "
        f"and the observed spread of per-seed differences in test accuracy (SD {100 * sd:.2f} points), "
        f"the smallest difference between {against} this study detects reliably is "
        f"{100 * mde:.2f} points, for one comparison on its own (a correction over many needs more)."
    ]
    for delta in differences:
        k = seeds_needed(delta, sd)
        need = f"more than {MAX_SEEDS:,} seeds" if k is None else f"{k} seeds"
        unit = "point" if 100 * delta == 1 else "points"
        lines.append(
            f"Detecting a difference of {100 * delta:g} {unit} with {POWER:.0%} power would need {need} at this spread."
        )
    return lines
