"""Simulated adaptive studies: no training, the same analysis a report makes.

A 2 x 2 x 2 factorial (eight arms) whose every run's test accuracy is base +
planted effect + N(0, sd), its train accuracy 0.97 + N(0, sd): the gap has the
noise of both. The outcome of every arm on each of ``max`` seeds is drawn up front
(the seeds an arm would get, were it given them), then the adaptive rule runs:
analyse the first round, give the next round's seeds to the open arms only, until
nothing is open or no round is left. Shared by the suite's test and
benchmarks/adaptive_seeds.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from synthetic import factorial

from ablate.engine.store.record import seed_rounds as rounds
from ablate.report.analysis import analyse
from ablate.report.sequential import DIFFERENT, EQUIVALENT

FACTORS = {"a": ["none", "a1"], "b": ["none", "b1"], "c": ["none", "c1"]}
SD = 0.01


@dataclass(frozen=True)
class Outcome:
    verdicts: dict[tuple[str, str, str], str]  # (factor, level, metric) -> verdict of its main effect
    runs: int
    any_false_different: bool  # a "different" verdict on a comparison whose true difference is zero
    all_decided: bool  # every main effect ended different or equivalent


def full_study(
    rng: np.random.Generator, seeds: int, effect: Callable[[Mapping[str, str]], float] | None
) -> tuple[pd.DataFrame, object]:
    return factorial(FACTORS, seeds=seeds, sd=SD, test_effect=effect, rng=rng)


def adaptive(
    table: pd.DataFrame, record, low: int, high: int, margin_pp: float, truth: Mapping[tuple, float] | None = None
) -> Outcome:
    """Run the adaptive rule on a full table (every arm on ``high`` seeds)."""
    record = record.replace(
        design={"kind": "factorial", "seeds": {"min": low, "max": high}, "margin": margin_pp},
        seeds=tuple(range(high)),
    )
    planned = {a: low for a in record.arms}
    schedule = rounds(low, high)
    seed = table["seed"].to_numpy()
    arm = table["arm"].to_numpy()
    while True:
        keep = seed < np.array([planned[a] for a in arm])
        an = analyse(table[keep].reset_index(drop=True), record, descriptive=False)
        fam = an.family
        nxt = [n for n in schedule if n > max(planned.values())]
        if not fam.open_arms or not nxt:
            break
        for a in fam.open_arms:
            planned[a] = nxt[0]
    verdicts = {(c.subject, c.level, c.metric): c.decision for c in fam.claims if c.kind == "main"}
    truth = truth or {}
    false_diff = any(
        c.decision == DIFFERENT and truth.get((c.kind, c.subject, c.level, c.metric), 0.0) == 0.0 for c in fam.claims
    )
    decided = all(c.decision in (DIFFERENT, EQUIVALENT) for c in fam.claims if c.kind == "main")
    return Outcome(verdicts, sum(planned.values()), false_diff, decided)


def planted(size: float) -> tuple[Callable[[Mapping[str, str]], float], dict[tuple, float]]:
    """A main effect of a1 on test accuracy of ``size`` SDs (so -size on the gap), and the true differences."""
    effect = size * SD
    truth = {("main", "a", "a1", "test_accuracy"): effect, ("main", "a", "a1", "gap"): -effect}
    return (lambda lv: effect if lv["a"] == "a1" else 0.0), truth


def fixed(table: pd.DataFrame, record, n: int, margin_pp: float, truth: Mapping[tuple, float] | None = None) -> Outcome:
    """The same intervals with a single look at n seeds (min = max = n): a fixed design's verdicts."""
    return adaptive(table[table["seed"] < n].reset_index(drop=True), record, n, n, margin_pp, truth)


def fixed_findings_hit(table: pd.DataFrame, record, n: int) -> bool:
    """Whether today's fixed-seed Findings (Holm, no margin) on n seeds call a=a1's effect
    on test accuracy significant."""
    sub = table[table["seed"] < n].reset_index(drop=True)
    an = analyse(sub, record.replace(seeds=tuple(range(n))), descriptive=False)
    return any(
        c.kind == "main" and c.subject == "a" and c.metric == "test_accuracy" and c.significant
        for c in an.family.claims
    )


def rate(hits: int, total: int) -> tuple[float, float, float]:
    """(share, 95% Clopper-Pearson interval)."""
    from scipy.stats import beta

    low = float(beta.ppf(0.025, hits, total - hits + 1)) if hits else 0.0
    high = float(beta.ppf(0.975, hits + 1, total - hits)) if hits < total else 1.0
    return hits / total, low, high
