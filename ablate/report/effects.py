"""Main effects, two-way interactions, fANOVA importance and the Pareto front.

Factors are the study's top-level factors; a crossed sub-parameter is folded
into its factor's level ("dropout(rate=0.1)") because it exists only where its
parent is on. Only factors with more than one level among the runs count.
Seeds are the replicates: a marginal or cell mean is first averaged within each
seed (over the other factors' arms), then its interval is taken across seeds.
"""

from __future__ import annotations

import itertools
import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ablate.report.fmt import finite, points, value
from ablate.report.stats import COMPLETE, is_present, mean_ci

MIN_FANOVA_RUNS = 8  # fewer completed runs than this gives the forest nothing to split on
MAX_INTERACTION_ROWS = 40


@dataclass(frozen=True)
class LevelStat:
    level: str
    mean: float
    low: float
    high: float
    n: int  # seeds


@dataclass(frozen=True)
class Interaction:
    """Both factors moved off their reference level: is the joint effect the sum of the parts?"""

    factor: str
    level: str
    other: str
    other_level: str
    seeds: int
    effect_a: float = math.nan
    effect_b: float = math.nan
    joint: float = math.nan
    contrast: float = math.nan  # joint − (effect_a + effect_b)
    low: float = math.nan
    high: float = math.nan

    @property
    def verdict(self) -> str:
        if not (finite(self.low) and finite(self.high)):
            return f"too few seeds to tell (n={self.seeds})"
        if self.low <= 0 <= self.high:
            return "consistent with adding up (interval includes 0)"
        return (
            "more than additive: they reinforce each other" if self.contrast > 0 else "less than additive: they overlap"
        )


def factor_levels(table: pd.DataFrame, factors: Sequence[str]) -> pd.DataFrame:
    """One string column per top-level factor, sub-parameters folded into the level."""
    tops = [f for f in factors if "." not in f and f in table.columns]
    out = pd.DataFrame(index=table.index)
    for f in tops:
        subs = [c for c in table.columns if isinstance(c, str) and c.startswith(f + ".")]
        labels = []
        names = [c[len(f) + 1 :] for c in subs]
        for base, *rest in zip(*(table[c].tolist() for c in (f, *subs))):  # columns, not rows: 10x faster
            extra = [f"{n}={value(v)}" for n, v in zip(names, rest) if is_present(v)]
            labels.append(f"{value(base)}({','.join(extra)})" if extra else value(base))
        out[f] = labels
    return out


def varied_factors(levels: pd.DataFrame) -> list[str]:
    return [f for f in levels.columns if levels[f].nunique() > 1]


def reference_levels(levels: pd.DataFrame, table: pd.DataFrame, baseline: str | None) -> dict:
    """The baseline arm's levels (else the first arm's): effects are measured from there."""
    if levels.empty:
        return {}
    rows = table.index[table["arm"].astype(str) == str(baseline)] if baseline else []
    first = rows[0] if len(rows) else levels.index[0]
    return {f: levels.at[first, f] for f in levels.columns}


def _seed_cells(table: pd.DataFrame, levels: pd.DataFrame, keys: Sequence[str], metric: str) -> dict[tuple, dict]:
    """{levels of keys: {seed: mean of metric}} over completed runs.

    Plain dicts rather than a pandas multi-key groupby, which costs ~50 ms a call
    here and is called a dozen times per report."""
    vals = (
        pd.to_numeric(table[metric], errors="coerce").to_numpy(dtype=float)
        if metric in table.columns
        else np.full(len(table), math.nan)
    )
    ok = np.isfinite(vals)
    if "status" in table.columns:
        ok &= (table["status"] == COMPLETE).to_numpy()
    sums: dict[tuple, dict] = {}
    cols = [levels[k].tolist() for k in keys]
    for i, seed, v, good in zip(range(len(vals)), table["seed"].tolist(), vals.tolist(), ok.tolist()):
        if good:
            cell = sums.setdefault(tuple(c[i] for c in cols), {})
            total, n = cell.get(seed, (0.0, 0))
            cell[seed] = (total + v, n + 1)
    return {k: {s: t / n for s, (t, n) in cell.items()} for k, cell in sums.items()}


def _order(levels: pd.DataFrame, f: str) -> list[str]:
    return list(dict.fromkeys(levels[f].tolist()))


def main_effects(
    table: pd.DataFrame, levels: pd.DataFrame, factors: Sequence[str], metric: str
) -> dict[str, list[LevelStat]]:
    """Per factor, per level: mean over seeds of the per-seed marginal mean, with a t interval."""
    out = {}
    for f in factors:
        cells = _seed_cells(table, levels, [f], metric)
        stats = []
        for lv in _order(levels, f):
            vals = list(cells.get((lv,), {}).values())
            m, lo, hi = mean_ci(vals)
            stats.append(LevelStat(lv, m, lo, hi, len(vals)))
        out[f] = stats
    return out


def cell_means(
    table: pd.DataFrame, levels: pd.DataFrame, f: str, g: str, metric: str
) -> list[tuple[str, str, LevelStat]]:
    """(level of f, level of g, stat) for every combination: the interaction plot's points."""
    cells = _seed_cells(table, levels, [f, g], metric)
    out = []
    for a in _order(levels, f):
        for b in _order(levels, g):
            vals = list(cells.get((a, b), {}).values())
            m, lo, hi = mean_ci(vals)
            out.append((a, b, LevelStat(b, m, lo, hi, len(vals))))
    return out


def interactions(
    table: pd.DataFrame, levels: pd.DataFrame, factors: Sequence[str], ref: Mapping, metric: str
) -> list[Interaction]:
    """Interaction contrasts against the reference levels, per pair of factors, per seed."""
    out = []
    for f, g in itertools.combinations(factors, 2):
        cells = _seed_cells(table, levels, [f, g], metric)
        a0, b0 = ref[f], ref[g]
        for a in _order(levels, f):
            for b in _order(levels, g):
                if a == a0 or b == b0:
                    continue
                c11, c10, c01, c00 = (cells.get(k, {}) for k in ((a, b), (a, b0), (a0, b), (a0, b0)))
                seeds = [s for s in c11 if s in c10 and s in c01 and s in c00]
                if not seeds:  # the design never crossed these levels (e.g. leave-one-out)
                    continue
                arr = np.array(
                    [(c10[s] - c00[s], c01[s] - c00[s], c11[s] - c00[s]) for s in seeds], dtype=float
                ).reshape(-1, 3)
                contrast = arr[:, 2] - arr[:, 0] - arr[:, 1]
                m, lo, hi = mean_ci(contrast)
                if len(contrast) >= 2 and np.ptp(contrast) <= 1e-12 * max(1.0, abs(m)):
                    lo = hi = math.nan  # no variance (up to rounding): no interval to speak of
                ea, eb, joint = arr.mean(0) if len(arr) else (math.nan,) * 3
                out.append(Interaction(f, a, g, b, len(arr), float(ea), float(eb), float(joint), m, lo, hi))
    return out


def interaction_sentence(it: Interaction) -> str:
    return (
        f"{it.factor}={it.level} with {it.other}={it.other_level}: alone {points(it.effect_a)} and "
        f"{points(it.effect_b)} points, together {points(it.joint)}; interaction "
        f"{points(it.contrast)} points"
        + (f" (95% CI {points(it.low)} to {points(it.high)})" if finite(it.low) else "")
        + f": {it.verdict}."
    )


def fanova(
    table: pd.DataFrame, levels: pd.DataFrame, factors: Sequence[str], metric: str = "test_accuracy"
) -> tuple[dict[str, float], str]:
    """({factor: importance}, note) from optuna.importance.FanovaImportanceEvaluator(seed=0)
    on an in-memory study with one trial per completed run; empty with a reason when it cannot apply."""
    if len(factors) < 2:
        return {}, f"fANOVA needs at least two factors with more than one level; this study has {len(factors)}."
    vals = pd.to_numeric(table.get(metric), errors="coerce")
    ok = np.isfinite(vals.to_numpy(dtype=float))
    if "status" in table.columns:
        ok &= (table["status"] == COMPLETE).to_numpy()
    if ok.sum() < MIN_FANOVA_RUNS:
        return {}, f"fANOVA needs at least {MIN_FANOVA_RUNS} completed runs; this study has {int(ok.sum())}."
    if np.ptp(vals[ok].to_numpy(dtype=float)) == 0:
        return {}, "fANOVA skipped: test accuracy is the same in every run."
    import optuna
    from optuna.distributions import BaseDistribution, CategoricalDistribution
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    dists: dict[str, BaseDistribution] = {f: CategoricalDistribution(_order(levels, f)) for f in factors}
    trials = [
        optuna.trial.create_trial(
            params={f: levels.at[i, f] for f in factors}, distributions=dists, value=float(vals[i])
        )
        for i in table.index[ok]
    ]
    logger = logging.getLogger("optuna")
    old = logger.level
    logger.setLevel(logging.WARNING)  # "A new study created in memory"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            study = optuna.create_study(direction="maximize")
            study.add_trials(trials)
            imp = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0), params=list(factors))
    finally:
        logger.setLevel(old)
    return {str(k): float(v) for k, v in imp.items()}, ""


def pareto_front(board: pd.DataFrame) -> list[str]:
    """Arms no other arm beats on both higher test accuracy and lower gap, best accuracy first."""
    if board.empty:
        return []
    pts = [
        (str(a), t, g)
        for a, t, g in zip(board["arm"], board["test_mean"], board["gap_mean"])
        if finite(t) and finite(g)
    ]
    front = [a for a, t, g in pts if not any((t2 >= t and g2 <= g) and (t2 > t or g2 < g) for _, t2, g2 in pts)]
    order = {a: t for a, t, _ in pts}
    return sorted(front, key=lambda a: -order[a])
