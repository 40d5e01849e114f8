"""Optuna drives the runs: every (arm, seed) is one trial in a persistent study,
so a study resumes, and several workers can share one storage.

Enumerated designs enqueue their exact arms with their parameters (the sampler
is never consulted for them), so the arm set is exactly the design's: no
missing, no extra, no seed treated as a hyperparameter. Sampled designs let a
sampler (TPE, random, NSGA-II) choose arms within a budget, each run with the
search seed; a search may then confirm its best arms over the study's seeds.
A run counts as done once its result, failure or pruning is stored; an
interrupted or stale trial is run again.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.trial import TrialState

from ablate.config import StudyConfig
from ablate.design import Arm, primitive, sampled_arm
from ablate.errors import UserError
from ablate.registry import Registry
from ablate.training import RunFailed, pick_device, set_threads, train_run

OBJECTIVE = "val_accuracy"


@dataclass(frozen=True)
class PlannedRun:
    arm: Arm
    seed: int
    key: str
    stage: str = "main"  # "main" for enumerated designs; "search" or "confirm" for a search


def run_key(config: StudyConfig, arm: Arm, seed: int) -> str:
    """Changes whenever what the run trains changes."""
    return f"{config.fingerprint()}-{arm.key}-{seed}"


def plan_runs(config: StudyConfig, arms: list[Arm], stage: str = "main",
              seeds: list[int] | None = None) -> list[PlannedRun]:
    return [PlannedRun(arm, seed, run_key(config, arm, seed), stage)
            for arm in arms for seed in (config.seeds if seeds is None else seeds)]


def default_storage(out_dir: Path) -> str:
    return f"sqlite:///{(out_dir / 'study.db').resolve()}"


def fail_stale(study: optuna.Study) -> None:
    """Mark trials whose worker stopped sending heartbeats as failed (so they rerun)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An RDB storage with heartbeats, so a killed worker's trial is noticed and rerun."""
    local = url.startswith("sqlite")
    kwargs = {"connect_args": {"timeout": 60}} if local else {"pool_pre_ping": True}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs,
                                              heartbeat_interval=2 if local else 10,
                                              grace_period=8 if local else 40)
    except Exception as exc:
        raise UserError(f"cannot open storage {url!r}: {type(exc).__name__}: {exc}".splitlines()[0],
                        key="--storage", expected="sqlite:///PATH or postgresql://USER@HOST/DB") from None


def optuna_study_name(config: StudyConfig) -> str:
    """Two objectives need a study of their own: Optuna fixes directions per study."""
    return f"{config.name}-pareto" if config.design.kind == "pareto" else config.name


def _sampler(config: StudyConfig) -> optuna.samplers.BaseSampler:
    d = config.design
    if d.sampler == "tpe":  # Optuna 5 changed defaults: say them
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=d.search_seed, multivariate=True, group=True,
                                              constant_liar=True)
    if d.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=d.search_seed)
    # enumerated designs enqueue every trial; the sampler is never consulted for them
    return optuna.samplers.RandomSampler(seed=d.search_seed)


def _pruner(config: StudyConfig) -> optuna.pruners.BasePruner:
    return {"median": lambda: optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2),
            "successive_halving": lambda: optuna.pruners.SuccessiveHalvingPruner(),
            }.get(config.design.pruner, optuna.pruners.NopPruner)()


def open_study(config: StudyConfig, storage: optuna.storages.BaseStorage) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our own progress lines say what happened
    directions = ["maximize", "minimize"] if config.design.kind == "pareto" else ["maximize"]
    try:
        return optuna.create_study(storage=storage, study_name=optuna_study_name(config),
                                   directions=directions, sampler=_sampler(config),
                                   pruner=_pruner(config), load_if_exists=True)
    except Exception as exc:
        raise UserError(f"cannot open the study in its storage: {type(exc).__name__}: {exc}",
                        key="--storage") from None


def run_states(study: optuna.Study) -> dict[str, list[optuna.trial.FrozenTrial]]:
    """Trials grouped by run key."""
    out: dict[str, list[optuna.trial.FrozenTrial]] = {}
    for t in study.get_trials(deepcopy=False):
        key = t.user_attrs.get("run_key")
        if key:
            out.setdefault(key, []).append(t)
    return out


def is_done(trial: optuna.trial.FrozenTrial) -> bool:
    """Done once its result, failure or pruning is stored, even if the worker
    died before Optuna marked the trial finished."""
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state != TrialState.WAITING and (
        "result" in trial.user_attrs or "failure" in trial.user_attrs)


@dataclass
class Progress:
    """Prints one line per finished run with an estimate of the time left."""

    total: int
    already: int
    log: Callable[[str], None]
    started: float = 0.0
    finished: int = 0

    def __post_init__(self) -> None:
        self.started = time.perf_counter()

    def report(self, run: PlannedRun, text: str) -> None:
        self.finished += 1
        elapsed = time.perf_counter() - self.started
        left = max(self.total - self.already - self.finished, 0)
        eta = elapsed / self.finished * left
        stage = f"{run.stage} " if run.stage != "main" else ""
        self.log(f"[{self.already + self.finished}/{self.total}] {stage}{run.arm.name} seed={run.seed}: "
                 f"{text}  (eta {eta:.0f}s)")


def suggest_values(trial: optuna.Trial, config: StudyConfig) -> dict[str, Any]:
    """The arm as Optuna parameters: levels, conditional sub-parameters, ranges.

    For enqueued trials these return the enqueued values; for sampled ones the
    sampler chooses. Either way the study records them (dashboard, fANOVA).
    """
    values: dict[str, Any] = {}
    for f in config.factors:
        if f.range is not None:
            r = f.range
            suggest = trial.suggest_int if r.integer else trial.suggest_float
            values[f.name] = suggest(f.name, r.low, r.high, log=r.log)
            continue
        level = trial.suggest_categorical(f.name, list(dict.fromkeys(primitive(o[0]) for o in f.options)))
        values[f.name] = level
        raw_level = next(o[0] for o in f.options if primitive(o[0]) == level)
        grid_params = sorted({p for lv, varied, _ in f.options if lv == raw_level for p in varied})
        for p in grid_params:
            if p in (f.ranges.get(raw_level, {}) if f.kind else {}):
                continue
            choices = [o[1][p] for o in f.options if o[0] == raw_level and p in o[1]]
            values[f"{f.name}.{p}"] = trial.suggest_categorical(f"{f.name}.{p}", list(dict.fromkeys(choices)))
        for p, r in (f.ranges.get(raw_level, {}) if f.kind else {}).items():
            suggest = trial.suggest_int if r.integer else trial.suggest_float
            values[f"{f.name}.{p}"] = suggest(f"{f.name}.{p}", r.low, r.high, log=r.log)
    return values


def _objective(config: StudyConfig, registry: Registry, runs: dict[str, PlannedRun],
               progress: Progress, stage: str):
    device = pick_device(config.train["device"])
    pareto = config.design.kind == "pareto"

    def objective(trial: optuna.Trial):
        values = suggest_values(trial, config)
        if stage == "search":
            arm = sampled_arm(config, values)
            seed = config.design.search_seed
            run = PlannedRun(arm, seed, run_key(config, arm, seed), "search")
            trial.set_user_attr("run_key", run.key)
            trial.set_user_attr("arm", arm.name)
            trial.set_user_attr("seed", seed)
            trial.set_user_attr("values", arm.values)
            earlier = [t for t in run_states(trial.study).get(run.key, [])
                       if t.number != trial.number and t.state == TrialState.COMPLETE]
            if earlier:  # the sampler proposed an arm it already ran: reuse, don't retrain
                trial.set_user_attr("repeat_of", earlier[0].number)
                progress.report(run, f"same arm as trial {earlier[0].number}, not retrained")
                return earlier[0].values if pareto else earlier[0].value
        else:
            run = runs.get(trial.user_attrs.get("run_key", ""))
            if run is None:  # the queue ran dry under us (another worker took the last run)
                trial.study.stop()
                raise optuna.TrialPruned("no queued run")
        trial.set_user_attr("stage", run.stage)
        history: list[dict[str, float]] = []

        def on_epoch(metrics: dict[str, float]) -> None:
            history.append(metrics)
            if config.design.pruner != "none" and run.stage == "search":  # confirmations run in full
                trial.report(metrics[OBJECTIVE], metrics["epoch"])
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at epoch {metrics['epoch']}")

        try:
            result = train_run(config, registry, run.arm, run.seed, device, on_epoch=on_epoch)
        except optuna.TrialPruned:
            trial.set_user_attr("pruned", {"history": history, "epochs": len(history)})
            progress.report(run, f"pruned at epoch {len(history)}")
            raise
        except (RunFailed, RuntimeError, ValueError) as exc:
            reason = str(exc).splitlines()[0][:500] or type(exc).__name__
            trial.set_user_attr("failure", reason)
            progress.report(run, f"FAILED: {reason}")
            raise RunFailed(reason) from exc
        trial.set_user_attr("result", {
            "metrics": result.metrics, "history": result.history, "epochs": result.epochs,
            "stop_reason": result.stop_reason, "seconds": result.seconds, "config": result.config})
        m = result.metrics
        progress.report(run, f"test {m['test_accuracy']:.3f} gap {m['gap']:+.3f} "
                             f"({result.epochs} ep, {result.stop_reason}, {result.seconds:.1f}s)")
        if pareto:  # choose on validation only: the test split is never used to choose
            return m["val_accuracy"], m["train_accuracy"] - m["val_accuracy"]
        return m[OBJECTIVE]

    return objective


def _optimize(study: optuna.Study, objective, n_trials: int) -> None:
    study.optimize(objective, n_trials=n_trials, catch=(RunFailed,))


def run_planned(study: optuna.Study, config: StudyConfig, registry: Registry,
                planned: list[PlannedRun], progress: Progress, log: Callable[[str], None]) -> None:
    """Enqueue and run every planned run that has no stored outcome yet."""
    runs = {r.key: r for r in planned}
    objective = _objective(config, registry, runs, progress, "planned")
    while True:
        fail_stale(study)
        states = run_states(study)
        pending = [r for r in planned if not any(is_done(t) for t in states.get(r.key, []))]
        if not pending:
            return
        waiting = busy = 0
        for r in pending:
            trial_states = {t.state for t in states.get(r.key, [])}
            if TrialState.WAITING in trial_states:
                waiting += 1
            elif TrialState.RUNNING in trial_states:
                busy += 1
            else:
                study.enqueue_trial(dict(r.arm.values), user_attrs={
                    "run_key": r.key, "arm": r.arm.name, "seed": r.seed, "stage": r.stage})
                waiting += 1
        if waiting:
            _optimize(study, objective, waiting)
        else:
            log(f"waiting for {busy} run(s) in progress elsewhere (or stale, noticed within seconds)")
            time.sleep(3)


def search_trials(study: optuna.Study, config: StudyConfig) -> list[optuna.trial.FrozenTrial]:
    """This study file's sampled trials (same fingerprint), in order."""
    prefix = config.fingerprint() + "-"
    return [t for t in study.get_trials(deepcopy=False)
            if t.user_attrs.get("stage") == "search" and t.user_attrs.get("run_key", "").startswith(prefix)]


def run_search(study: optuna.Study, config: StudyConfig, registry: Registry, progress: Progress,
               log: Callable[[str], None]) -> list[PlannedRun]:
    """Spend the search budget; return the search runs (one per distinct arm)."""
    objective = _objective(config, registry, {}, progress, "search")
    while True:
        fail_stale(study)
        trials = search_trials(study, config)
        done = sum(1 for t in trials if is_done(t))
        busy = sum(1 for t in trials if t.state == TrialState.RUNNING and not is_done(t))
        left = config.design.budget - done - busy
        if left > 0:
            _optimize(study, objective, left)
        elif busy:
            log(f"waiting for {busy} search run(s) in progress elsewhere")
            time.sleep(3)
        else:
            break
    runs: dict[str, PlannedRun] = {}
    for t in search_trials(study, config):
        if "repeat_of" in t.user_attrs or not is_done(t):
            continue
        arm = sampled_arm(config, t.user_attrs["values"])
        runs.setdefault(t.user_attrs["run_key"], PlannedRun(arm, t.user_attrs["seed"],
                                                            t.user_attrs["run_key"], "search"))
    return list(runs.values())


def best_arms(study: optuna.Study, searched: list[PlannedRun], k: int) -> list[Arm]:
    """The K search arms with the highest validation accuracy (completed runs only)."""
    value = {t.user_attrs.get("run_key"): t.value for t in study.get_trials(deepcopy=False)
             if t.state == TrialState.COMPLETE and t.value is not None and len(t.values) == 1}
    ranked = sorted((r for r in searched if r.key in value), key=lambda r: -value[r.key])
    return [r.arm for r in ranked[:k]]


def run_study(config: StudyConfig, registry: Registry, arms: list[Arm], storage_url: str,
              log: Callable[[str], None] = print) -> tuple[optuna.Study, list[PlannedRun]]:
    """Run every missing run of the design; return the study and the runs that count."""
    set_threads(config.train["threads"])
    logging.getLogger("optuna").setLevel(logging.ERROR)
    study = open_study(config, open_storage(storage_url))
    study.set_user_attr("fingerprint", config.fingerprint())
    fail_stale(study)
    d = config.design
    states = run_states(study)
    if d.sampled:
        total = d.budget + (d.confirm_top * len(config.seeds) if d.kind == "search" else 0)
        already = min(sum(1 for t in search_trials(study, config) if is_done(t)), d.budget)
        planned: list[PlannedRun] = []
    else:
        planned = plan_runs(config, arms)
        total = len(planned)
        already = sum(1 for r in planned if any(is_done(t) for t in states.get(r.key, [])))
    progress = Progress(total, already, log)
    if already:
        log(f"{already} of {total} runs already stored; {total - already} to train")
    if not d.sampled:
        run_planned(study, config, registry, planned, progress, log)
        return study, planned
    searched = run_search(study, config, registry, progress, log)
    if d.kind != "search" or d.confirm_top == 0:
        return study, searched
    top = best_arms(study, searched, d.confirm_top)
    confirm = plan_runs(config, top, stage="confirm")
    progress.total = len(searched) + len(confirm) + (d.budget - len(searched))
    log(f"confirming the top {len(top)} arms over {len(config.seeds)} seeds: " + "; ".join(a.name for a in top))
    run_planned(study, config, registry, confirm, progress, log)
    return study, searched + confirm
