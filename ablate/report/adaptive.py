"""The Findings' comparisons of an adaptive study, look by look (sequential.py says why).

An adaptive study's seeds are its record's seeds in order; after each round every
arm still in play has the first n_k of them. Each comparison is computed at each
look from the first n_k seeds of the arms it involves only (its block model fit
on those arms, or its paired differences), so every look is a fixed-size sample
fixed in advance, as the union bound behind the intervals needs. A look counts
for a comparison only when every one of its arms has an outcome for each of
those seeds. The comparisons that decide when to stop are the main effects
(crossed designs) or the arms against the baseline (other designs), on test
accuracy and the gap; interactions get verdicts too, from the seeds the main
effects needed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from ablate.engine.store.record import seed_rounds
from ablate.report.blocks import contrast, fit
from ablate.report.claims import (
    ARM,
    CLAIM_METRICS,
    INTERACTION,
    MAIN,
    Claim,
    Family,
    _add,
    _cell,
    _mean_weights,
    _order,
    arm_levels,
    is_crossed,
)
from ablate.report.paired import seed_values
from ablate.report.sequential import OPEN, UNDECIDED, Look, Sequential, combine

DECIDING = (MAIN, ARM)  # the kinds whose verdicts decide when the study stops


@dataclass(frozen=True)
class Setup:
    """What an adaptive study planned: its seeds in order, the rounds and the margin (a fraction)."""

    seeds: tuple[int, ...]
    rounds: tuple[int, ...]
    margin: float


def setup_of(design: Mapping, seeds: Sequence[int]) -> Setup | None:
    """The adaptive set-up stored in a record's design, or None for a fixed-seed study."""
    given = design.get("seeds") if design else None
    if not isinstance(given, Mapping):
        return None
    low, high = int(given["min"]), int(given["max"])
    return Setup(tuple(seeds)[:high], seed_rounds(low, high), float(design.get("margin", 1.0)) / 100)


@dataclass(frozen=True)
class _Target:
    claim: Claim
    arms: tuple[str, ...]
    weights: dict[str, float]
    cells: tuple[list[str], ...] = ()  # an interaction's (both, first alone, second alone, neither)


def adaptive_family(
    table: pd.DataFrame,
    levels: pd.DataFrame,
    varied: Sequence[str],
    ref: Mapping[str, str],
    baseline: str | None,
    arm_names: Sequence[str],
    setup: Setup,
) -> Family:
    """Every comparison with its running interval and verdict; ``open_arms`` need the next round."""
    arms = arm_levels(table, levels, varied) if len(table) and varied else {}
    crossed = is_crossed(arms, varied)
    if crossed:
        targets = _crossed_targets(arms, varied, ref)
    elif baseline:
        targets = [
            _Target(Claim(ARM, m, a, ref=baseline), (a, baseline), {a: 1.0, baseline: -1.0})
            for m in CLAIM_METRICS
            for a in arm_names
            if a != baseline
        ]
    else:
        targets = []
    present = _seeds_present(table)
    values = {m: seed_values(table, m) for m in CLAIM_METRICS}
    m = len(targets)
    fits: dict = {}  # one block model per (metric, look, arms): main effects of two-level factors share them
    looks_of = [_looks(t, values[t.claim.metric], present, setup, crossed, fits) for t in targets]
    # a comparison is final when its last look is the last round, or when it cannot
    # get more: it does not decide the stopping and every deciding one is settled
    first = [
        combine(lk, setup.rounds, m, setup.margin, final=bool(lk) and lk[-1].n == setup.rounds[-1]) for lk in looks_of
    ]
    deciding_open = any(s.verdict == OPEN for t, s in zip(targets, first) if t.claim.kind in DECIDING)
    claims, open_arms = [], {}
    for t, lk, s in zip(targets, looks_of, first):
        if s.verdict == OPEN and (not lk or t.claim.kind not in DECIDING) and not deciding_open:
            s = replace(s, verdict=UNDECIDED)
        if s.verdict == OPEN and t.claim.kind in DECIDING:
            open_arms.update(dict.fromkeys(t.arms))
        claims.append(_claim(t, lk, s, values[t.claim.metric], setup))
    how = "block" if crossed else "paired" if baseline else "none"
    df = max((c.df for c in claims), default=0)
    order = [a for a in arm_names if a in open_arms]
    return Family(tuple(claims), crossed, how, df, margin=setup.margin, rounds=setup.rounds, open_arms=tuple(order))


def _crossed_targets(arms: Mapping[str, Mapping[str, str]], varied: Sequence[str], ref: Mapping[str, str]) -> list:
    out = []
    for metric in CLAIM_METRICS:
        for f in varied:
            base = _cell(arms, {f: ref[f]})
            for level in _order(arms, f):
                if level != ref[f]:
                    w = _mean_weights(_cell(arms, {f: level}), base)
                    out.append(_Target(Claim(MAIN, metric, f, level, ref[f]), tuple(w), w))
        if metric != "test_accuracy":
            continue
        for i, f in enumerate(varied):
            for g in varied[i + 1 :]:
                a0, b0 = ref[f], ref[g]
                for a in _order(arms, f):
                    for b in _order(arms, g):
                        if a == a0 or b == b0:
                            continue
                        c11, c10, c01, c00 = (
                            _cell(arms, {f: x, g: y}) for x, y in ((a, b), (a, b0), (a0, b), (a0, b0))
                        )
                        if not (c11 and c10 and c01 and c00):
                            continue
                        w = _add(_mean_weights(c11, c10), _mean_weights(c00, c01))
                        w = {k: v for k, v in w.items() if abs(v) > 1e-12}
                        claim = Claim(INTERACTION, metric, f, a, a0, g, b, b0)
                        arms_of = tuple(dict.fromkeys([*c11, *c10, *c01, *c00]))
                        out.append(_Target(claim, arms_of, w, (c11, c10, c01, c00)))
    return out


def _seeds_present(table: pd.DataFrame) -> dict[str, set]:
    """{arm: seeds with a stored outcome}, complete or not."""
    out: dict[str, set] = {}
    for arm, seed in zip(table["arm"].astype(str), table["seed"]):
        out.setdefault(arm, set()).add(seed)
    return out


def _looks(
    t: _Target, values: Mapping[str, Mapping], present: Mapping[str, set], setup: Setup, crossed: bool, fits: dict
) -> list[Look]:
    """The comparison at each look all its arms completed (stopping at the first they did not)."""
    out = []
    for n in setup.rounds:
        seeds = set(setup.seeds[:n])
        if not all(seeds <= present.get(a, set()) for a in t.arms):
            break
        sub = {a: {s: v for s, v in values.get(a, {}).items() if s in seeds} for a in t.arms}
        if not crossed:
            out.append(_paired_look(sub, t.arms, n))
            continue
        key = (t.claim.metric, n, t.arms)
        if key not in fits:
            fits[key] = fit(sub)
        c = contrast(fits[key], t.weights)
        out.append(Look(n, c.estimate, c.se, c.df))
    return out


def _paired_look(sub: Mapping[str, Mapping], arms: Sequence[str], n: int) -> Look:
    arm, base = (sub.get(a, {}) for a in arms)
    d = np.array([arm[s] - base[s] for s in sorted(set(arm) & set(base))], dtype=float)
    if d.size < 2:
        return Look(n, float(d.mean()) if d.size else math.nan)
    return Look(n, float(d.mean()), float(d.std(ddof=1)) / math.sqrt(d.size), d.size - 1)


def _claim(t: _Target, looks: list[Look], s: Sequential, values: Mapping[str, Mapping], setup: Setup) -> Claim:
    last = looks[-1] if looks else None
    extra: dict[str, Any] = {}
    if t.cells and last is not None:  # an interaction's effects alone and together, from its last look's fit
        seeds = set(setup.seeds[: last.n])
        model = fit({a: {k: v for k, v in values.get(a, {}).items() if k in seeds} for a in t.arms})
        c11, c10, c01, c00 = t.cells
        extra = {
            name: contrast(model, _mean_weights(cell, c00)).estimate
            for name, cell in (("alone_a", c10), ("alone_b", c01), ("joint", c11))
        }
    return replace(
        t.claim,
        estimate=s.estimate,
        low=s.low,
        high=s.high,
        p=s.p,
        p_holm=s.p,
        df=last.df if last else 0,
        n=s.n,
        note=_note(s, last),
        decision=s.verdict,
        **extra,
    )


def _note(s: Sequential, last: Look | None) -> str:
    if last is None:
        return "no look yet: not every arm of it has its first round of seeds"
    if not math.isfinite(s.low):
        return "no interval: no seed-to-seed variation to estimate the noise"
    if s.decided_at:
        return f"decided with {s.decided_at} seeds per arm"
    return f"{s.n} seeds per arm"
