"""Run a study's design through a coordinator: the enumerated runs, or a
search's budget then its confirmation stage. Used by ``ablate run`` and
``ablate worker`` alike, so any mix of them on one storage trains each run once."""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import optuna

from ablate.engine.coordinator import Coordinator, Executor, Grouper, one_by_one
from ablate.engine.estimate import run_count
from ablate.engine.planned import PlannedRun, best_arms, plan_runs, search_trials, searched_runs
from ablate.engine.pool import ProcessPool, usable_cores
from ablate.engine.progress import make_progress
from ablate.engine.store import attrs, db_patience
from ablate.engine.store.optuna_internals import engine_of
from ablate.engine.store.run_claims import ClaimStore
from ablate.engine.store.trials import is_done, run_outcome, run_states
from ablate.errors import UserError
from ablate.plugin.disabling import disabled_names
from ablate.plugin.registry import Registry
from ablate.plugin.versions import plugin_versions
from ablate.spec import PER_SEED_KINDS, Execution
from ablate.study.config import StudyConfig
from ablate.study.design import Arm
from ablate.train.stacked.units import arm_groups

Log = Callable[[str], None]
NextRound = Callable[[list[PlannedRun]], list[PlannedRun]]
GRACE_SECONDS = 30.0
HEARTBEAT_SECONDS = 2.0


@dataclass
class RunOptions:
    """How this command executes the study (never what a run computes)."""

    jobs: int = 1
    threads: int | None = None  # per worker process; default: cores / jobs, at least 1
    retry_failed: bool = False
    retrain_changed: bool = False  # runs whose components' plugin versions changed since they trained
    plugin_files: list[Path] = field(default_factory=list)


def worker_threads(config: StudyConfig, options: RunOptions) -> int:
    """Torch threads per worker: the study's setting, else the cores shared out."""
    if options.threads is not None:
        return options.threads
    if options.jobs > 1 and "threads" not in config.raw.get("train", {}):
        return max(1, usable_cores() // options.jobs)
    return int(config.train["threads"])


def execution_of(config: StudyConfig, options: RunOptions) -> Execution:
    return Execution(
        config.train["device"],
        worker_threads(config, options),
        stack=config.train["stack"],
        compile=config.train["compile"],
    )


def stacking_grouper(registry: Registry, execution: Execution, workers: int = 1) -> Grouper:
    """Units of work: the seeds of each arm together (with the arms that may share
    its stack); the worker stacks them where they can stack (and fit), else trains
    them one by one. Deciding there keeps the coordinator from building models
    (seconds, serial) before any training. With several workers, the cheapest units
    are halved until there are two per worker, and the costliest while the work
    would not share out evenly, so no worker idles at the end."""

    def group(runs: list[PlannedRun]) -> list[list[PlannedRun]]:
        if not execution.may_stack(len(runs)):
            return one_by_one(runs)

        units = arm_groups(runs, lambda r: r.spec, registry)
        units = evened(shared_out(units, 2 * workers if workers > 1 else 1), workers)
        return sorted(units, key=unit_cost, reverse=True)

    return group


def shared_out(units: list[list[PlannedRun]], count: int) -> list[list[PlannedRun]]:
    """The units, the cheapest halved (in order: an arm's seeds stay together where
    they can) until there are ``count`` of them or none has two runs. Halving the
    cheapest keeps the big stacks whole and leaves small units to even out the end."""
    units = list(units)
    while len(units) < count:
        splittable = [u for u in units if len(u) > 1]
        if not splittable:
            break
        cheapest = min(splittable, key=unit_cost)
        units.remove(cheapest)
        half = (len(cheapest) + 1) // 2
        units += [cheapest[:half], cheapest[half:]]
    return units


def evened(units: list[list[PlannedRun]], workers: int, slack: float = 1.1) -> list[list[PlannedRun]]:
    """The units, the costliest halved while handing them out longest first would give
    one worker more than ``slack`` times its even share: five equal stacks on two
    workers are three for one and two for the other, a fifth of the study's time lost."""
    units = list(units)
    share = sum(unit_cost(u) for u in units) / max(workers, 1)
    while workers > 1 and _busiest(units, workers) > slack * share:
        splittable = [u for u in units if len(u) > 1]
        if not splittable:
            break
        costliest = max(splittable, key=unit_cost)
        half = (len(costliest) + 1) // 2
        split = [u for u in units if u is not costliest] + [costliest[:half], costliest[half:]]
        if _busiest(split, workers) >= _busiest(units, workers):
            break  # halving no longer evens the work out: keep the stacks whole
        units = split
    return units


def _busiest(units: list[list[PlannedRun]], workers: int) -> float:
    """The busiest worker's work when each takes the longest unit left as it frees up."""
    loads = [0.0] * workers
    for cost in sorted((unit_cost(u) for u in units), reverse=True):
        loads[loads.index(min(loads))] += cost
    return max(loads)


def unit_cost(unit: list[PlannedRun]) -> float:
    """A rough guess of a unit's training time, to hand the longest out first (the
    last unit then leaves less of a tail): epochs per run, halved for a run with a
    stopping rule, weighted by its other components (each adds layers or work per step)."""
    total = 0.0
    for run in unit:
        per_seed = sum(c.kind in PER_SEED_KINDS for c in run.spec.components)
        others = len(run.spec.components) - per_seed
        total += run.spec.train["epochs"] * (0.5 if per_seed else 1.0) * (1 + others)
    return total


def make_executor(
    config: StudyConfig, registry: Registry, options: RunOptions, pool: ProcessPool | None = None
) -> Executor:
    """Where this command trains: in this process (`--jobs 1`), else in worker
    processes (``pool``: started earlier by the command line, else now)."""
    execution = execution_of(config, options)
    if options.jobs <= 1:
        from ablate.engine.executors import InlineExecutor  # trains here: torch only for this command
        from ablate.train.build import prepare_process  # torch: only when this runs, not at start-up

        prepare_process(execution.threads)
        return InlineExecutor(registry, execution)
    if pool is None:
        pool = ProcessPool(options.jobs, [str(p) for p in options.plugin_files], disabled_names())
    pool.execution = execution
    return pool


def claim_timing() -> tuple[float, float]:
    """(heartbeat, grace) in seconds: a worker beats every 2 s, and its heartbeat is missed
    for 30 s before another worker takes its run over (long enough for a loaded machine's
    SQLite lock waits). ABLATE_HEARTBEAT_SECONDS and ABLATE_CLAIM_GRACE_SECONDS set them
    (tests of faults take seconds with them)."""
    values = []
    defaults = {"ABLATE_HEARTBEAT_SECONDS": HEARTBEAT_SECONDS, "ABLATE_CLAIM_GRACE_SECONDS": GRACE_SECONDS}
    for name, default in defaults.items():
        text = os.environ.get(name, "")
        try:
            value = float(text) if text else default
        except ValueError:
            value = -1.0
        if not value > 0:
            raise UserError(f"{name}={text!r} is not valid", key=name, expected="a number of seconds above 0")
        values.append(value)
    heartbeat, grace = values
    if grace <= 2 * heartbeat:
        raise UserError(
            f"a claim grace of {grace:g}s with a heartbeat every {heartbeat:g}s",
            key="ABLATE_CLAIM_GRACE_SECONDS",
            expected=f"more than two heartbeats: above {2 * heartbeat:g}",
        )
    return heartbeat, grace


def claim_store(study: optuna.Study, url: str, grace: float = GRACE_SECONDS) -> ClaimStore:
    """This process's claims, taken over by others after ``grace`` without a heartbeat."""
    worker = f"{socket.gethostname()}:{os.getpid()}"
    return ClaimStore(engine_of(study), study.study_name, worker, grace=grace)


def stored_counts(study: optuna.Study, config: StudyConfig, planned: list[PlannedRun]) -> tuple[int, int]:
    """(runs with a stored outcome, of which failed) among this study file's runs."""
    if config.design.sampled:
        done = [t for t in search_trials(study, config) if is_done(t) and attrs.REPEAT_OF not in t.user_attrs]
        return min(len(done), config.design.budget), sum(1 for t in done if attrs.FAILURE in t.user_attrs)
    states = run_states(study)
    outcomes = [run_outcome(states.get(r.key, [])) for r in planned]
    return sum(o is not None for o in outcomes), sum(o == "failed" for o in outcomes)


def changed_versions(study: optuna.Study, planned: list[PlannedRun], registry: Registry) -> dict[str, str]:
    """run key -> what changed, for stored runs trained with other plugin versions than installed now."""

    states = run_states(study)
    changed: dict[str, str] = {}
    for run in planned:
        stored = [
            t.user_attrs[attrs.RESULT].get("versions", {})
            for t in states.get(run.key, [])
            if attrs.RESULT in t.user_attrs
        ]
        if not stored:
            continue
        now = plugin_versions(run.spec, registry)
        diff = [
            f"{k.split(':', 1)[1]}: {stored[-1][k]} -> {v}"
            for k, v in now.items()
            if k.startswith("plugin:") and k in stored[-1] and stored[-1][k] != v and _comparable(stored[-1][k], v)
        ]
        if diff:
            changed[run.key] = diff[0]
    return changed


def _comparable(stored: str, now: str) -> bool:
    """A plugin file's runs stored before files had digests say only its name: nothing
    to compare (else every such run would read as changed)."""
    return not (stored.startswith("file:") and " sha256:" not in stored and now.startswith(stored + " sha256:"))


def announce(
    study: optuna.Study, config: StudyConfig, planned: list[PlannedRun], total: int, options: RunOptions, log: Log
) -> int:
    """Say what is stored already; return the number that needs no training."""
    already, failed = stored_counts(study, config, planned)
    if already:
        failures = ""
        if failed:
            failures = f", {failed} of them failed" + (
                "; --retry-failed trains those again"
                if not options.retry_failed
                else ": trained again (--retry-failed)"
            )
        log(f"{already} of {total} runs already stored{failures}; {total - already} to train")
    return already - (failed if options.retry_failed else 0)


def run_study(
    config: StudyConfig,
    registry: Registry,
    arms: list[Arm],
    study: optuna.Study,
    url: str,
    options: RunOptions | None = None,
    log: Log = print,
    executor: Executor | None = None,
    next_round: NextRound | None = None,
) -> list[PlannedRun]:
    """Train every missing run of the design; return the runs that count.
    ``executor``: one started earlier (else made here); closed on the way out.
    ``next_round``: adaptive seeds: given the runs so far, all stored, the next round's
    runs (none: done); it decides from stored results only, so a resumed study and
    every worker reach the same rounds."""
    options = options or RunOptions()
    logging.getLogger("optuna").setLevel(logging.ERROR)
    d = config.design
    planned = next_round([]) if next_round else [] if d.sampled else plan_runs(config, arms)
    total = run_count(config, []) if d.sampled else len(planned)
    already = announce(study, config, planned, total, options, log)
    changed = changed_versions(study, planned, registry)
    if changed:
        example = next(iter(changed.values()))
        log(
            f"{len(changed)} stored run(s) were trained with other plugin versions ({example})"
            + (
                "; training them again (--retrain-changed)"
                if options.retrain_changed
                else "; --retrain-changed trains them again"
            )
        )
    retrain = set(changed) if options.retrain_changed else set()
    heartbeat, grace = claim_timing()
    claims = claim_store(study, url, grace)
    db_patience.PATIENCE.watch(claims.engine)
    progress = make_progress(total, already - len(retrain), log, live=sys.stdout.isatty())
    coordinator = Coordinator(
        study,
        config,
        claims,
        executor or make_executor(config, registry, options),
        progress,
        log,
        heartbeat=heartbeat,
        grouper=stacking_grouper(registry, execution_of(config, options), options.jobs),
    )
    interrupted = True
    try:
        coordinator.start()
        if next_round is not None:
            runs = _rounds(coordinator, planned, options, retrain, next_round)
        else:
            runs = _stages(coordinator, config, planned, options, retrain)
        interrupted = False
        return runs
    finally:
        coordinator.close(interrupted)
        progress.close()


def _rounds(
    coordinator: Coordinator, planned: list[PlannedRun], options: RunOptions, retrain: set[str], next_round: NextRound
) -> list[PlannedRun]:
    """Train a round, then ask for the next, until none is left."""
    new = planned
    while new:
        coordinator.run_planned(new, options.retry_failed, retrain)
        new = next_round(planned)
        planned = planned + new
        coordinator.progress.total += len(new)
        coordinator.progress.already += stored_counts(coordinator.study, coordinator.config, new)[0]
    return planned


def _stages(
    coordinator: Coordinator, config: StudyConfig, planned: list[PlannedRun], options: RunOptions, retrain: set[str]
) -> list[PlannedRun]:
    d = config.design
    if not d.sampled:
        coordinator.run_planned(planned, options.retry_failed, retrain)
        return planned
    fingerprint = config.fingerprint()
    coordinator.run_search([f"search-{fingerprint}-{i}" for i in range(d.budget)])
    searched = searched_runs(coordinator.study, config)
    if d.kind != "search" or d.confirm_top == 0:
        return searched
    top = best_arms(coordinator.study, searched, d.confirm_top)
    confirm = plan_runs(config, top, stage=attrs.CONFIRM)
    coordinator.progress.total = len(searched) + len(confirm)
    coordinator.log(
        f"confirming the top {len(top)} arms over {len(config.seeds)} seeds: " + "; ".join(a.name for a in top)
    )
    coordinator.run_planned(confirm, options.retry_failed)
    return searched + confirm
