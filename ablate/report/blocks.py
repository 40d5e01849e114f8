"""The study's runs as a randomized complete block design: value = arm + seed + noise.

Seeds are blocks: every arm of a seed shares its data split and initialisation
stream, so seed effects cancel from any comparison of arms. Fitting every arm
at once pools the seed-to-seed noise of all arms into one residual variance,
with (arms - 1) x (seeds - 1) degrees of freedom in a complete design instead of
(seeds - 1) for one paired test: with 5 seeds that is what makes a correction
over a dozen claims affordable. It assumes arms have a similar spread over
seeds. Least squares handles missing runs (failed seeds); a comparison the data
cannot identify is reported as untestable, never as a number.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy import special

from ablate.report.stats import t_quantile

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Contrast:
    """A weighted sum of arm effects (weights summing to 0) with its t test."""

    estimate: float
    se: float = math.nan
    df: int = 0
    low: float = math.nan
    high: float = math.nan
    p: float = math.nan
    note: str = ""

    @property
    def tested(self) -> bool:
        return math.isfinite(self.p)


@dataclass(frozen=True)
class BlockFit:
    """Least-squares fit of arm and seed effects; ``unscaled`` is (X'X)^+ for the arm columns."""

    arms: tuple[str, ...]
    coef: np.ndarray
    unscaled: np.ndarray
    identified: np.ndarray  # rows of (X'X)^+ X'X for the arm columns: what a contrast can identify
    mse: float
    df: int
    runs: int


def fit(values: Mapping[str, Mapping[Hashable, float]]) -> BlockFit:
    """Fit {arm: {seed: value}} (finite values only; arms without any are left out)."""
    cells = [(a, s, float(v)) for a, per in values.items() for s, v in per.items() if math.isfinite(v)]
    arms = tuple(dict.fromkeys(a for a, _, _ in cells))
    seeds = list(dict.fromkeys(s for _, s, _ in cells))
    arm_ix, seed_ix = {a: i for i, a in enumerate(arms)}, {s: i for i, s in enumerate(seeds)}
    x = np.zeros((len(cells), len(arms) + max(len(seeds) - 1, 0)))
    y = np.array([v for _, _, v in cells])
    for row, (a, s, _) in enumerate(cells):
        x[row, arm_ix[a]] = 1.0
        if seed_ix[s] > 0:  # the first seed is the reference block
            x[row, len(arms) + seed_ix[s] - 1] = 1.0
    xtx = x.T @ x
    pinv = np.linalg.pinv(xtx) if len(cells) else np.zeros((0, 0))
    coef = pinv @ x.T @ y if len(cells) else np.zeros(0)
    rank = int(np.linalg.matrix_rank(x)) if len(cells) else 0
    resid = y - x @ coef if len(cells) else y
    df = len(cells) - rank
    ss = float(resid @ resid)
    if ss <= 1e-24 * max(1.0, float(y @ y)):  # identical up to rounding: no noise to estimate
        ss = 0.0
    mse = ss / df if df > 0 else math.nan
    k = len(arms)
    return BlockFit(
        arms, coef[:k], pinv[:k, :k], (pinv @ xtx)[:k, :] if len(cells) else np.zeros((0, 0)), mse, df, len(cells)
    )


def contrast(model: BlockFit, weights: Mapping[str, float], confidence: float = CONFIDENCE) -> Contrast:
    """Estimate, interval and two-sided t test of sum(w * arm effect); weights must sum to 0."""
    missing = [a for a, w in weights.items() if w and a not in model.arms]
    if missing:
        return Contrast(math.nan, note=f"no completed run of {missing[0]}")
    c = np.array([weights.get(a, 0.0) for a in model.arms], dtype=float)
    full = np.zeros(model.identified.shape[1]) if model.identified.size else np.zeros(0)
    full[: len(c)] = c
    if not model.identified.size or float(np.abs(c @ model.identified - full).max()) > 1e-8:
        return Contrast(math.nan, note="the seeds these arms ran on do not overlap: no comparison")
    est = float(c @ model.coef)
    if model.df <= 0:
        return Contrast(est, note="no degree of freedom left to estimate the noise: no interval or test")
    if model.mse == 0.0:
        return Contrast(est, df=model.df, note="no seed-to-seed variation at all: no interval or test")
    se = math.sqrt(model.mse * float(c @ model.unscaled @ c))
    if not se > 0:
        return Contrast(est, df=model.df, note="no variance: no interval or test")
    half = t_quantile(0.5 + confidence / 2, model.df) * se
    p = float(2 * special.stdtr(model.df, -abs(est) / se))  # the t distribution's tail, as a ufunc
    return Contrast(est, se, model.df, est - half, est + half, p)
