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
from functools import cached_property

import numpy as np

from ablate.report.stats import t_quantile, t_two_sided_p

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
    """Least-squares fit of arm and seed effects, with the seed effects absorbed: what a
    contrast needs grows with arms x seeds, never with arms x arms.

    ``counts`` is the arms x seeds incidence (runs of each arm on each seed), ``reduced_inv``
    the pseudo-inverse of the seeds' reduced normal matrix C = D_s - N' D_a^-1 N, and
    ``component`` each arm's connected component of the arm-seed graph: a contrast is
    identified when its weights sum to zero within every component."""

    arms: tuple[str, ...]
    coef: np.ndarray
    counts: np.ndarray
    reduced_inv: np.ndarray
    component: np.ndarray
    mse: float
    df: int
    runs: int

    @cached_property
    def index(self) -> dict[str, int]:
        return {a: i for i, a in enumerate(self.arms)}


def fit(values: Mapping[str, Mapping[Hashable, float]]) -> BlockFit:
    """Fit {arm: {seed: value}} (finite values only; arms without any are left out).

    The normal equations of value = arm + seed, solved by absorbing the arms (a block
    design's textbook route): C beta = q for the seed effects (C is seeds x seeds), then
    each arm's effect is its mean less the mean effect of its seeds. The rank of the design
    is arms + seeds - components, counted on the arm-seed graph, not by a decomposition."""
    cells = [(a, s, float(v)) for a, per in values.items() for s, v in per.items() if math.isfinite(v)]
    arms = tuple(dict.fromkeys(a for a, _, _ in cells))
    seeds = list(dict.fromkeys(s for _, s, _ in cells))
    arm_ix, seed_ix = {a: i for i, a in enumerate(arms)}, {s: i for i, s in enumerate(seeds)}
    rows = np.array([arm_ix[a] for a, _, _ in cells], dtype=int)
    cols = np.array([seed_ix[s] for _, s, _ in cells], dtype=int)
    y = np.array([v for _, _, v in cells], dtype=float)
    k, m = len(arms), len(seeds)
    counts = np.zeros((k, m))
    np.add.at(counts, (rows, cols), 1.0)
    n_arm = counts.sum(axis=1)
    arm_sum = np.bincount(rows, weights=y, minlength=k)
    seed_sum = np.bincount(cols, weights=y, minlength=m)
    scaled = counts / n_arm[:, None] if k else counts  # D_a^-1 N
    reduced = np.diag(counts.sum(axis=0)) - counts.T @ scaled
    reduced_inv = np.linalg.pinv(reduced) if m else np.zeros((0, 0))
    beta = reduced_inv @ (seed_sum - scaled.T @ arm_sum) if m else np.zeros(0)
    coef = (arm_sum - counts @ beta) / n_arm if k else np.zeros(0)
    component, n_components = _components(rows, cols, k, m)
    resid = y - coef[rows] - beta[cols] if len(cells) else y
    df = len(cells) - (k + m - n_components)
    ss = float(resid @ resid)
    if ss <= 1e-24 * max(1.0, float(y @ y)):  # identical up to rounding: no noise to estimate
        ss = 0.0
    mse = ss / df if df > 0 else math.nan
    return BlockFit(arms, coef, counts, reduced_inv, component, mse, df, len(cells))


def _components(rows: np.ndarray, cols: np.ndarray, arms: int, seeds: int) -> tuple[np.ndarray, int]:
    """Each arm's connected component of the graph joining an arm to the seeds it ran on,
    and the number of components (union-find over the runs)."""
    parent = list(range(arms + seeds))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, s in zip(rows.tolist(), cols.tolist()):
        ra, rs = root(a), root(arms + s)
        if ra != rs:
            parent[ra] = rs
    roots = [root(i) for i in range(arms + seeds)]
    return np.array(roots[:arms], dtype=int), len(set(roots))


def contrast(model: BlockFit, weights: Mapping[str, float], confidence: float = CONFIDENCE) -> Contrast:
    """Estimate, interval and two-sided t test of sum(w * arm effect); weights must sum to 0.

    Its variance is mse * (sum w_i^2 / n_i + u' C^+ u) with u = N' D_a^-1 w: the arms block
    of a generalized inverse of X'X, computed for the arms the contrast names only."""
    index = model.index
    missing = [a for a, w in weights.items() if w and a not in index]
    if missing:
        return Contrast(math.nan, note=f"no completed run of {missing[0]}")
    named = [(index[a], float(w)) for a, w in weights.items() if w]
    ix = np.array([i for i, _ in named], dtype=int)
    c = np.array([w for _, w in named], dtype=float)
    per_component: dict[int, float] = {}
    for comp, w in zip(model.component[ix].tolist(), c.tolist()):
        per_component[comp] = per_component.get(comp, 0.0) + w
    if not model.arms or any(abs(total) > 1e-8 for total in per_component.values()):
        return Contrast(math.nan, note="the seeds these arms ran on do not overlap: no comparison")
    est = float(c @ model.coef[ix])
    if model.df <= 0:
        return Contrast(est, note="no degree of freedom left to estimate the noise: no interval or test")
    if model.mse == 0.0:
        return Contrast(est, df=model.df, note="no seed-to-seed variation at all: no interval or test")
    n_arm = model.counts[ix].sum(axis=1)
    u = (c / n_arm) @ model.counts[ix]
    se = math.sqrt(model.mse * float(c @ (c / n_arm) + u @ model.reduced_inv @ u))
    if not se > 0:
        return Contrast(est, df=model.df, note="no variance: no interval or test")
    half = t_quantile(0.5 + confidence / 2, model.df) * se
    p = t_two_sided_p(est / se, model.df)
    return Contrast(est, se, model.df, est - half, est + half, p)
