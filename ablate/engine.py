"""Optuna drives the runs: every (arm, seed) is one trial in a persistent study,
so a study resumes, and several workers can share one storage.

Enumerated designs enqueue their exact arms with their parameters (the sampler
is never consulted for them), so the arm set is exactly the design's: no
missing, no extra, no seed treated as a hyperparameter. Sampled designs let a
sampler (TPE, random, NSGA-II) choose arms within a budget, each run with the
search seed; a search may then confirm its best arms over the study's seeds.
A run is identified by its RunSpec hash and counts as done once its result,
failure or pruning is stored; an interrupted or stale trial is run again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from ablate import attrs
from ablate.build import RunFailed
from ablate.config import Range, StudyConfig
from ablate.design import Arm, primitive, run_spec, sampled_arm
from ablate.failures import describe
from ablate.progress import Progress
from ablate.registry import Registry
from ablate.spec import Execution, RunSpec
from ablate.storage import OBJECTIVE, fail_stale
from ablate.training import RunResult, train_run

Log = Callable[[str], None]
MAX_PROPOSALS = 10  # per budgeted arm: a search space smaller than its budget ends, not loops


@dataclass(frozen=True)
class PlannedRun:
    arm: Arm
    seed: int
    spec: RunSpec
    stage: str = attrs.MAIN  # "main" for enumerated designs; "search" or "confirm" for a search

    @property
    def key(self) -> str:
        return self.spec.key


def plan_runs(config: StudyConfig, arms: list[Arm], stage: str = attrs.MAIN,
              seeds: list[int] | None = None) -> list[PlannedRun]:
    return [PlannedRun(arm, seed, run_spec(config, arm, seed), stage)
            for arm in arms for seed in (config.seeds if seeds is None else seeds)]


def run_states(study: optuna.Study) -> dict[str, list[FrozenTrial]]:
    """Trials grouped by run key."""
    out: dict[str, list[FrozenTrial]] = {}
    for t in study.get_trials(deepcopy=False):
        key = t.user_attrs.get(attrs.RUN_KEY)
        if key:
            out.setdefault(key, []).append(t)
    return out


def is_done(trial: FrozenTrial) -> bool:
    """Done once its result, failure or pruning is stored, even if the worker
    died before Optuna marked the trial finished."""
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state != TrialState.WAITING and (
        attrs.RESULT in trial.user_attrs or attrs.FAILURE in trial.user_attrs)


def suggest_values(trial: optuna.Trial, config: StudyConfig) -> dict[str, Any]:
    """The arm as Optuna parameters: levels, conditional sub-parameters, ranges.

    For enqueued trials these return the enqueued values; for sampled ones the
    sampler chooses. Either way the study records them (dashboard, fANOVA).
    """
    values: dict[str, Any] = {}
    for f in config.factors:
        if f.range is not None:
            values[f.name] = suggest_range(trial, f.name, f.range)
            continue
        level = trial.suggest_categorical(f.name, list(dict.fromkeys(primitive(o.level) for o in f.options)))
        values[f.name] = level
        raw_level = next(o.level for o in f.options if primitive(o.level) == level)
        ranges = f.ranges.get(raw_level, {})
        for p in sorted({p for o in f.options if o.level == raw_level for p in o.varied} - set(ranges)):
            choices = [o.varied[p] for o in f.options if o.level == raw_level and p in o.varied]
            values[f"{f.name}.{p}"] = trial.suggest_categorical(f"{f.name}.{p}", list(dict.fromkeys(choices)))
        for p, r in ranges.items():
            values[f"{f.name}.{p}"] = suggest_range(trial, f"{f.name}.{p}", r)
    return values


def suggest_range(trial: optuna.Trial, name: str, r: Range) -> int | float:
    if r.integer:
        return trial.suggest_int(name, int(r.low), int(r.high), log=r.log)
    return trial.suggest_float(name, r.low, r.high, log=r.log)


def run_attrs(run: PlannedRun, fingerprint: str) -> dict[str, Any]:
    """What a trial records about the run it trains."""
    return {attrs.RUN_KEY: run.key, attrs.ARM: run.arm.name, attrs.ARM_KEY: run.arm.key, attrs.SEED: run.seed,
            attrs.STAGE: run.stage, attrs.VALUES: run.arm.values, attrs.FINGERPRINT: fingerprint,
            attrs.SPEC: run.spec.to_json()}


class Objective:
    """Trains the run a trial stands for and stores its outcome on the trial."""

    def __init__(self, config: StudyConfig, registry: Registry, runs: dict[str, PlannedRun],
                 progress: Progress, execution: Execution, search: bool = False):
        self.config, self.registry, self.runs, self.progress = config, registry, runs, progress
        self.execution, self.search = execution, search
        self.pareto = config.design.kind == "pareto"

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        values = suggest_values(trial, self.config)
        if self.search:
            run = self._search_run(trial, values)
            earlier = self._earlier_result(trial, run)
            if earlier is not None:
                return earlier
        else:
            run = self._queued_run(trial)
        return self._train(trial, run)

    def _search_run(self, trial: optuna.Trial, values: dict[str, Any]) -> PlannedRun:
        arm = sampled_arm(self.config, values)
        run = PlannedRun(arm, self.config.design.search_seed,
                         run_spec(self.config, arm, self.config.design.search_seed), attrs.SEARCH)
        for name, value in run_attrs(run, self.config.fingerprint()).items():
            trial.set_user_attr(name, value)
        return run

    def _earlier_result(self, trial: optuna.Trial, run: PlannedRun) -> Any:
        """The sampler proposed an arm it already ran: reuse its value, don't retrain."""
        earlier = [t for t in run_states(trial.study).get(run.key, [])
                   if t.number != trial.number and t.state == TrialState.COMPLETE]
        if not earlier:
            return None
        trial.set_user_attr(attrs.REPEAT_OF, earlier[0].number)
        self.progress.report(run, f"same arm as trial {earlier[0].number}, not retrained")
        return earlier[0].values if self.pareto else earlier[0].value

    def _queued_run(self, trial: optuna.Trial) -> PlannedRun:
        run = self.runs.get(trial.user_attrs.get(attrs.RUN_KEY, ""))
        if run is None:  # the queue ran dry under us (another worker took the last run)
            trial.study.stop()
            raise optuna.TrialPruned("no queued run")
        return run

    def _train(self, trial: optuna.Trial, run: PlannedRun) -> float | tuple[float, float]:
        history: list[dict[str, float]] = []
        try:
            result = train_run(run.spec, self.registry, self.execution, on_epoch=self._on_epoch(trial, run, history))
        except optuna.TrialPruned:
            trial.set_user_attr(attrs.PRUNED, {"history": history, "epochs": len(history)})
            self.progress.report(run, f"pruned at epoch {len(history)}")
            raise
        except Exception as exc:  # one failure policy: the run fails, the study goes on
            failure = describe(exc, self.registry)
            trial.set_user_attr(attrs.FAILURE_DETAIL, failure)
            trial.set_user_attr(attrs.FAILURE, failure["reason"])
            self.progress.report(run, f"FAILED: {failure['reason']}")
            raise RunFailed(failure["reason"]) from exc
        store_result(trial, result)
        m = result.metrics
        self.progress.report(run, f"test {m['test_accuracy']:.3f} gap {m['gap']:+.3f} "
                                  f"({result.epochs} ep, {result.stop_reason}, {result.seconds:.1f}s)")
        if self.pareto:  # choose on validation only: the test split is never used to choose
            return m["val_accuracy"], m["train_accuracy"] - m["val_accuracy"]
        return m[OBJECTIVE]

    def _on_epoch(self, trial: optuna.Trial, run: PlannedRun,
                  history: list[dict[str, float]]) -> Callable[[dict[str, float]], None]:
        prune = self.config.design.pruner != "none" and run.stage == attrs.SEARCH  # confirmations run in full

        def on_epoch(metrics: dict[str, float]) -> None:
            history.append(metrics)
            if self.pareto:  # Optuna keeps intermediate values for single-objective studies only
                return
            trial.report(metrics[OBJECTIVE], int(metrics["epoch"]))
            if prune and trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {metrics['epoch']}")

        return on_epoch


def store_result(trial: optuna.Trial, result: RunResult) -> None:
    """The run's outcome on its trial: one attribute with everything, and each
    final metric on its own so optuna-dashboard lists them."""
    trial.set_user_attr(attrs.RESULT, {
        "metrics": result.metrics, "history": result.history, "epochs": result.epochs,
        "stop_reason": result.stop_reason, "seconds": result.seconds, "config": result.config,
        "device": result.device, "threads": result.threads, "sizes": result.sizes})
    for name, value in result.metrics.items():
        trial.set_user_attr(attrs.METRIC_PREFIX + name, value)


def _optimize(study: optuna.Study, objective: Objective, n_trials: int) -> None:
    study.optimize(objective, n_trials=n_trials, catch=(RunFailed,))


def _enqueue_missing(study: optuna.Study, planned: list[PlannedRun], fingerprint: str) -> tuple[int, int]:
    """Queue each pending run that has no queued or running trial; (waiting, busy)."""
    states = run_states(study)
    waiting = busy = 0
    for r in planned:
        trials = states.get(r.key, [])
        if any(is_done(t) for t in trials):
            continue
        kinds = {t.state for t in trials}
        if TrialState.WAITING in kinds:
            waiting += 1
        elif TrialState.RUNNING in kinds:
            busy += 1
        else:
            study.enqueue_trial(dict(r.arm.values), user_attrs=run_attrs(r, fingerprint))
            waiting += 1
    return waiting, busy


def run_planned(study: optuna.Study, objective: Objective, planned: list[PlannedRun], log: Log) -> None:
    """Enqueue and run every planned run that has no stored outcome yet."""
    objective.runs.update({r.key: r for r in planned})
    while True:
        fail_stale(study)
        waiting, busy = _enqueue_missing(study, planned, objective.config.fingerprint())
        if waiting:
            _optimize(study, objective, waiting)
        elif busy:
            log(f"waiting for {busy} run(s) in progress elsewhere (or stale, noticed within seconds)")
            time.sleep(3)
        else:
            return


def search_trials(study: optuna.Study, config: StudyConfig) -> list[FrozenTrial]:
    """This study file's sampled trials (same fixed settings), in order."""
    fingerprint = config.fingerprint()
    return [t for t in study.get_trials(deepcopy=False)
            if t.user_attrs.get(attrs.STAGE) == attrs.SEARCH and t.user_attrs.get(attrs.FINGERPRINT) == fingerprint]


def run_search(study: optuna.Study, objective: Objective, log: Log) -> list[PlannedRun]:
    """Spend the search budget; return the search runs (one per distinct arm)."""
    config = objective.config
    while True:
        fail_stale(study)
        trials = search_trials(study, config)
        done = sum(1 for t in trials if is_done(t) and attrs.REPEAT_OF not in t.user_attrs)
        busy = sum(1 for t in trials if t.state == TrialState.RUNNING and not is_done(t))
        left = config.design.budget - done - busy
        if left > 0 and len(trials) >= MAX_PROPOSALS * config.design.budget:
            log(f"the sampler keeps proposing arms already run: stopping the search at {done} distinct arms")
            left = 0
        if left > 0:
            _optimize(study, objective, left)
        elif busy:
            log(f"waiting for {busy} search run(s) in progress elsewhere")
            time.sleep(3)
        else:
            break
    runs: dict[str, PlannedRun] = {}
    for t in search_trials(study, config):
        if attrs.REPEAT_OF in t.user_attrs or not is_done(t):
            continue
        arm = sampled_arm(config, t.user_attrs[attrs.VALUES])
        seed = int(t.user_attrs[attrs.SEED])
        runs.setdefault(t.user_attrs[attrs.RUN_KEY], PlannedRun(arm, seed, run_spec(config, arm, seed),
                                                                attrs.SEARCH))
    return list(runs.values())


def best_arms(study: optuna.Study, searched: list[PlannedRun], k: int) -> list[Arm]:
    """The K search arms with the highest validation accuracy (completed runs only)."""
    value = {t.user_attrs.get(attrs.RUN_KEY): t.value for t in study.get_trials(deepcopy=False)
             if t.state == TrialState.COMPLETE and t.value is not None and len(t.values) == 1}
    ranked = sorted((r for r in searched if r.key in value), key=lambda r: -value[r.key])
    return [r.arm for r in ranked[:k]]


def count_stored(study: optuna.Study, config: StudyConfig, planned: list[PlannedRun]) -> int:
    """Runs of this study file whose outcome is already stored."""
    if config.design.sampled:
        done = [t for t in search_trials(study, config) if is_done(t) and attrs.REPEAT_OF not in t.user_attrs]
        return min(len(done), config.design.budget)
    states = run_states(study)
    return sum(1 for r in planned if any(is_done(t) for t in states.get(r.key, [])))


def run_study(config: StudyConfig, registry: Registry, arms: list[Arm], study: optuna.Study,
              log: Log = print, execution: Execution | None = None) -> tuple[optuna.Study, list[PlannedRun]]:
    """Run every missing run of the design; return the study and the runs that count."""
    logging.getLogger("optuna").setLevel(logging.ERROR)
    execution = execution or Execution(config.train["device"], config.train["threads"])
    study.set_user_attr(attrs.STUDY_FINGERPRINT, config.fingerprint())
    fail_stale(study)
    d = config.design
    planned = [] if d.sampled else plan_runs(config, arms)
    total = d.budget + (d.confirm_top * len(config.seeds) if d.kind == "search" else 0) if d.sampled else len(planned)
    already = count_stored(study, config, planned)
    progress = Progress(total, already, log)
    if already:
        log(f"{already} of {total} runs already stored; {total - already} to train")
    if not d.sampled:
        run_planned(study, Objective(config, registry, {}, progress, execution), planned, log)
        return study, planned
    searched = run_search(study, Objective(config, registry, {}, progress, execution, search=True), log)
    if d.kind != "search" or d.confirm_top == 0:
        return study, searched
    top = best_arms(study, searched, d.confirm_top)
    confirm = plan_runs(config, top, stage=attrs.CONFIRM)
    progress.total = len(searched) + len(confirm) + (d.budget - len(searched))
    log(f"confirming the top {len(top)} arms over {len(config.seeds)} seeds: " + "; ".join(a.name for a in top))
    run_planned(study, Objective(config, registry, {}, progress, execution), confirm, log)
    return study, searched + confirm
