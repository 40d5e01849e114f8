"""Every arm against the baseline, paired by seed, Holm-corrected.

Pairing by seed matters: arms share the data split and each seed's
initialisation stream, so per-seed differences cancel seed-to-seed noise that
an unpaired test would count against a small effect. Only seeds where both
arms completed are used. Untestable cases (fewer than two shared seeds, the
same difference on every seed) carry a note instead of a p-value, and never
enter the Holm family, so nothing undefined is ever rendered as a claim.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ablate.report.fmt import finite, format_p
from ablate.report.stats import COMPLETE, mean_ci, t_two_sided_p

ALPHA = 0.05
# metric column -> (words, higher is better)
PAIRED_METRICS = {"test_accuracy": ("test accuracy", True), "gap": ("generalization gap", False)}


@dataclass(frozen=True)
class Comparison:
    """arm − baseline on one metric over the seeds both completed."""

    arm: str
    baseline: str
    metric: str
    n: int
    diff: float = math.nan
    low: float = math.nan
    high: float = math.nan
    d_z: float = math.nan
    p: float = math.nan
    p_holm: float = math.nan
    note: str = ""

    @property
    def tested(self) -> bool:
        return finite(self.p)

    @property
    def significant(self) -> bool:
        return finite(self.p_holm) and self.p_holm < ALPHA


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values; NaN entries stay NaN and are not in the family."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, math.nan)
    idx = np.flatnonzero(np.isfinite(p))
    order = idx[np.argsort(p[idx], kind="mergesort")]
    running, m = 0.0, idx.size
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def paired(arm_values: dict, base_values: dict, arm: str, baseline: str, metric: str) -> Comparison:
    """One comparison from {seed: value} dicts (unadjusted; holm() fills p_holm)."""
    seeds = sorted(set(arm_values) & set(base_values))
    d = np.array([arm_values[s] - base_values[s] for s in seeds], dtype=float)
    n = d.size
    if n == 0:
        return Comparison(arm, baseline, metric, 0, note="no seed where both arms completed")
    mean = float(d.mean())
    if n == 1:
        return Comparison(arm, baseline, metric, 1, diff=mean, note="one shared seed: no interval or test")
    sd = float(d.std(ddof=1))
    if not sd > 1e-12 * max(1.0, abs(mean)):
        return Comparison(
            arm, baseline, metric, n, diff=mean, note=f"the same difference on all {n} seeds: no variance, no test"
        )
    _, low, high = mean_ci(d)
    p = t_two_sided_p(mean / (sd / math.sqrt(n)), n - 1)  # the paired t-test
    return Comparison(arm, baseline, metric, n, mean, low, high, mean / sd, p)


def seed_values(table: pd.DataFrame, metric: str) -> dict[str, dict]:
    """{arm: {seed: value}} over completed runs with a finite value, in one pass."""
    if metric not in table.columns or "arm" not in table.columns:
        return {}
    vals = pd.to_numeric(table[metric], errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(vals)
    if "status" in table.columns:
        ok &= (table["status"] == COMPLETE).to_numpy()
    out: dict[str, dict] = {}
    for arm, seed, v in zip(table["arm"].astype(str)[ok].tolist(), table["seed"][ok].tolist(), vals[ok].tolist()):
        out.setdefault(arm, {})[seed] = float(v)
    return out


def against_baseline(table: pd.DataFrame, baseline: str, arms: Sequence[str], metric: str) -> list[Comparison]:
    """Every arm but the baseline, in the given order, with Holm over the tested ones."""
    values = seed_values(table, metric)
    base = values.get(baseline, {})
    comps = [paired(values.get(a, {}), base, a, baseline, metric) for a in arms if a != baseline]
    adjusted = holm([c.p for c in comps])
    return [_with(c, p_holm=float(q)) for c, q in zip(comps, adjusted)]


def _with(c: Comparison, **changes: float) -> Comparison:
    return Comparison(**{**c.__dict__, **changes})


def sentence(c: Comparison) -> str:
    """Plain words: "A beats B on test accuracy by 1.8 points (95% CI 0.9 to 2.7, p = 0.003)"."""
    words, higher_better = PAIRED_METRICS.get(c.metric, (c.metric, True))
    better = (c.diff > 0) == higher_better
    # The interval in the direction of the difference, so "trails by 1.8 (0.9 to 2.7)" reads right.
    size = abs(c.diff) * 100
    lo, hi = (c.low * 100, c.high * 100) if c.diff >= 0 else (-c.high * 100, -c.low * 100)
    if c.metric == "gap":
        verb = "narrows" if better else "widens"
        head = f"{c.arm} {verb} the generalization gap of {c.baseline} by {size:.1f} points"
    else:
        verb = "beats" if better else "trails"
        head = f"{c.arm} {verb} {c.baseline} on {words} by {size:.1f} points"
    return f"{head} (95% CI {lo:.1f} to {hi:.1f}, Holm-adjusted {format_p(c.p_holm)}, d_z = {c.d_z:.2f}, {c.n} seeds)."


def summary_lines(comps: Sequence[Comparison]) -> list[str]:
    """Significant differences in words, then one line for the rest and the untestable."""
    if not comps:
        return []
    lines = [sentence(c) for c in comps if c.significant]
    words = PAIRED_METRICS.get(comps[0].metric, (comps[0].metric, True))[0]
    rest = [c for c in comps if c.tested and not c.significant]
    if rest:
        if lines:
            lead = f"The other {len(rest)} tested arms do not" if len(rest) > 1 else "The other tested arm does not"
        else:
            lead = f"None of the {len(rest)} tested arms" if len(rest) > 1 else "The tested arm does not"
        verb = "differs" if lead.startswith("None") else "differ"
        lines.append(
            f"{lead} {verb} significantly from {comps[0].baseline} on {words} after Holm "
            f"correction (adjusted p ≥ {ALPHA:g})."
        )
    for c in comps:
        if not c.tested:
            lines.append(f"{c.arm}: {c.note}.")
    return lines
