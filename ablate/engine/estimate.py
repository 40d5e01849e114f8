"""`ablate plan`: what a study will run and roughly how long it will take,
before anything trains. The estimate comes from short calibration runs."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from ablate.engine.store.record import seed_rounds
from ablate.plugin.registry import Registry
from ablate.spec import Execution
from ablate.study.config import Factor, StudyConfig
from ablate.study.design import Arm, run_spec, sampled_arm
from ablate.train.stacked.units import arm_groups

if TYPE_CHECKING:
    from ablate.spec import Execution, RunSpec

MAX_CALIBRATED = 3
T = TypeVar("T")
# `ablate run --jobs 1` of the quickstart here, beyond training: imports, storage set-up and
# the report (whole command 16.3 s against 12.3 s of training, benchmarks/jobs.py, 2026-12-04)
STARTUP_SECONDS = 4.0


def run_count(config: StudyConfig, arms: list[Arm]) -> int:
    """The runs a study trains (for a sampled design: as planned; an arm proposed
    again while its first run is still training may train twice)."""
    if config.design.sampled:
        searched, confirmed = sampled_counts(config)
        return searched + confirmed * len(config.seeds)
    return len(arms) * len(config.seeds)


def sampled_counts(config: StudyConfig) -> tuple[int, int]:
    """A sampled design's arms at most: (tried, confirmed). A sampler proposing an arm
    again trains nothing new, so a finite space caps the budget; and only arms that
    were tried can be confirmed."""
    d = config.design
    tried = d.budget
    if not any(f.range is not None or f.ranges for f in config.factors):  # a continuous range: no end to the arms
        tried = min(d.budget, math.prod(len(f.options) for f in config.factors))
    return tried, min(d.confirm_top, tried) if d.kind == "search" else 0


def _spread(items: Sequence[T]) -> list[T]:
    """The first, middle and last items (fewer where there are fewer): what calibration times."""
    return [items[i] for i in sorted({0, len(items) // 2, len(items) - 1})[:MAX_CALIBRATED]]


def _calibration_arms(config: StudyConfig, arms: list[Arm]) -> list[Arm]:
    if arms:
        return _spread(arms)
    values = {}  # a sampled design: the middle of its space
    for f in config.factors:
        if f.range is not None:
            values[f.name] = (f.range.low + f.range.high) / 2
            continue
        option = f.options[-1]
        values[f.name] = option.level
        values.update({f"{f.name}.{p}": v for p, v in option.varied.items()})
        for p, r in f.ranges.get(option.level, {}).items():
            values[f"{f.name}.{p}"] = (r.low + r.high) / 2
    return [sampled_arm(config, values)]


def estimate_seconds(config: StudyConfig, registry: Registry, arms: list[Arm]) -> tuple[float, str]:
    """Train a few units of work as `ablate run --jobs 1` trains them (an arm's seeds
    stacked where they stack) for 1 and 3 epochs: half the difference is one epoch,
    the rest of the first is per-unit overhead (model set-up, final measurements).
    Per run, that is what the whole study costs (adaptive seeds: the most, every arm's max)."""

    execution = Execution(
        config.train["device"], config.train["threads"], stack=config.train["stack"], compile=config.train["compile"]
    )
    units = _calibration_units(config, registry, arms, execution)
    _timed(units[0], 1, registry, execution)  # warm-up: loads the data, first-call costs
    per_epoch, overhead = [], []
    for unit in units:
        one, three = _timed(unit, 1, registry, execution), _timed(unit, 3, registry, execution)
        epoch = max((three - one) / 2, 1e-4)
        per_epoch.append(epoch / len(unit))
        overhead.append(max(one - epoch, 0.0) / len(unit))
    epoch_s = sum(per_epoch) / len(per_epoch)
    run_s = sum(overhead) / len(overhead) + config.train["epochs"] * epoch_s
    total = STARTUP_SECONDS + run_count(config, arms) * run_s
    runs = sum(len(u) for u in units)
    how = f"{_count(len(units), 'unit')} of work, {_count(runs, 'run')}"
    how += ", stacked as they will train" if runs > len(units) else ""
    note = (
        f"calibrated on 1- and 3-epoch trainings of {how}: {epoch_s * 1000:.0f} ms per epoch of a run, "
        f"~{run_s:.2f} s per {config.train['epochs']}-epoch run, plus ~{STARTUP_SECONDS:.0f} s of start-up "
        "and report, at --jobs 1; assumes every run trains all its epochs"
    )
    return total, note


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _calibration_units(
    config: StudyConfig, registry: Registry, arms: list[Arm], execution: Execution
) -> list[list[RunSpec]]:
    """Up to MAX_CALIBRATED units of work as the engine makes them: the first stack
    (or run) of the first, middle and last groups of arms that share stacks. Only
    those are split (splitting builds models). Runs that train alone (a sampled
    design's search, stacking off, one seed): one run of the first, middle and last arms."""
    from ablate.train.stacked.grouping import stack_splits  # torch: only when this runs, not at start-up

    seeds = config.seeds[: config.adaptive[0]] if config.adaptive else config.seeds  # a round trains min seeds
    if config.design.sampled or not arms or not execution.may_stack(len(seeds)):
        return [[run_spec(config, arm, seeds[0])] for arm in _calibration_arms(config, arms)]
    groups = arm_groups([run_spec(config, a, seed) for a in arms for seed in seeds], lambda s: s, registry)
    return [[group[i] for i in stack_splits(group, registry, execution)[0]] for group in _spread(groups)]


def _timed(unit: list[RunSpec], epochs: int, registry: Registry, execution: Execution) -> float:
    """Seconds to train the unit with ``epochs`` epochs per run; a run's failure is raised."""
    from ablate.train.stacked.training import train_group  # torch: only when this runs, not at start-up

    specs = [dataclasses.replace(s, train={**s.train, "epochs": epochs}) for s in unit]
    start = time.perf_counter()
    outcomes = train_group(specs, registry, execution)
    seconds = time.perf_counter() - start
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return seconds


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"~{seconds:.0f} s"
    if seconds < 5400:
        return f"~{seconds / 60:.1f} min"
    return f"~{seconds / 3600:.1f} h"


def describe(config: StudyConfig, arms: list[Arm], out: Callable[[str], None] = print) -> None:
    """The design, the table of arms (factors as columns) and the run count."""
    d = config.design
    out(f"study {config.name}: design {d.kind}" + (f" ({d.sampler})" if d.sampler else ""))
    if config.question:
        out(f"question: {config.question}")
    tried, confirmed = sampled_counts(config) if d.sampled else (0, 0)
    if d.sampled:
        out(f"arms: chosen by {d.sampler} within a budget of {d.budget}, each run with seed {d.search_seed}")
        for f in config.factors:
            out(f"  {f.name}: {_space(f)}")
        if tried < d.budget:
            out(f"  the space holds {tried} arms: a proposal made again trains nothing new")
        if confirmed:
            out(f"then the top {confirmed} arms are confirmed over seeds {config.seeds}")
        if d.pruner != "none":
            out(f"pruning: {d.pruner} on validation accuracy per epoch")
    else:
        columns = list(dict.fromkeys(k for a in arms for k in a.values))
        rows = [["#", "arm", *columns]] + [
            [str(i), a.name, *(str(a.values.get(c, "")) for c in columns)] for i, a in enumerate(arms, 1)
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        out(f"arms ({len(arms)}):")
        for r in rows:
            out("  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
    n = run_count(config, arms)
    if config.adaptive:
        low, high = config.adaptive
        out(
            f"runs: {len(arms)} arms x {low} to {high} seeds = {len(arms) * low} to {n} (adaptive: rounds of "
            f"{', '.join(map(str, seed_rounds(low, high)))} seeds per arm, each round only for the arms whose "
            f"comparisons are still open; margin {config.margin:g} points)"
        )
    elif d.sampled:
        extra = f" + {confirmed} x {len(config.seeds)} seeds" if confirmed else ""
        out(f"runs: {tried}{extra} = {n}")
    else:
        out(f"runs: {len(arms)} arms x {len(config.seeds)} seeds = {n}")


def _space(f: Factor) -> str:
    if f.range is not None:
        return f"[{f.range.low:g}, {f.range.high:g}]" + (" log" if f.range.log else "")
    parts = []
    for level in dict.fromkeys(o.level for o in f.options):
        varied = {p for o in f.options if o.level == level for p in o.varied}
        ranges = f.ranges.get(level, {})
        subs = [f"{p} in [{r.low:g}, {r.high:g}]" + (" log" if r.log else "") for p, r in ranges.items()]
        subs += [f"{p} in {sorted({o.varied[p] for o in f.options if o.level == level})}" for p in varied - set(ranges)]
        parts.append(f"{level}({', '.join(subs)})" if subs else str(level))
    return " | ".join(parts)
