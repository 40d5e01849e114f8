"""Optuna drives the runs: every (arm, seed) is one trial in a persistent study,
so a study resumes, and several workers can share one storage.

The exact arms are enqueued with their parameters (the sampler is never
consulted for them), so the arm set is exactly the design's: no missing, no
extra, no seed treated as a hyperparameter. A run counts as done once a trial
for it completed or failed with a recorded reason; an interrupted or stale
trial is run again.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import optuna
from optuna.trial import TrialState

from ablate.config import StudyConfig
from ablate.design import Arm, primitive
from ablate.errors import UserError
from ablate.registry import Registry
from ablate.training import RunFailed, pick_device, set_threads, train_run

OBJECTIVE = "val_accuracy"


@dataclass(frozen=True)
class PlannedRun:
    arm: Arm
    seed: int
    key: str


def plan_runs(config: StudyConfig, arms: list[Arm]) -> list[PlannedRun]:
    """Every (arm, seed) with a key that changes whenever what it runs changes."""
    fp = config.fingerprint()
    return [PlannedRun(arm, seed, f"{fp}-{arm.key}-{seed}") for arm in arms for seed in config.seeds]


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


def open_study(config: StudyConfig, storage: optuna.storages.BaseStorage) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(storage=storage, study_name=config.name, direction="maximize",
                               sampler=optuna.samplers.RandomSampler(seed=0), load_if_exists=True)


def run_states(study: optuna.Study) -> dict[str, list[optuna.trial.FrozenTrial]]:
    """Trials grouped by run key."""
    out: dict[str, list[optuna.trial.FrozenTrial]] = {}
    for t in study.get_trials(deepcopy=False):
        key = t.user_attrs.get("run_key")
        if key:
            out.setdefault(key, []).append(t)
    return out


def is_done(trial: optuna.trial.FrozenTrial) -> bool:
    """Done once its result or failure reason is stored, even if the worker died
    before Optuna marked the trial finished."""
    return trial.state == TrialState.COMPLETE or (
        trial.state != TrialState.WAITING and ("result" in trial.user_attrs or "failure" in trial.user_attrs))


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
        left = self.total - self.already - self.finished
        eta = elapsed / self.finished * left
        self.log(f"[{self.already + self.finished}/{self.total}] {run.arm.name} seed={run.seed}: "
                 f"{text}  (eta {eta:.0f}s)")


def _objective(config: StudyConfig, registry: Registry, runs: dict[str, PlannedRun],
               progress: Progress):
    device = pick_device(config.train["device"])

    def objective(trial: optuna.Trial) -> float:
        run = runs.get(trial.user_attrs.get("run_key", ""))
        if run is None:  # the queue ran dry under us (another worker took the last run)
            trial.study.stop()
            raise optuna.TrialPruned("no queued run")
        for factor in config.factors:  # record the arm's factors as Optuna parameters
            levels = [primitive(opt[0]) for opt in factor.options]
            trial.suggest_categorical(factor.name, list(dict.fromkeys(levels)))
            for p in _varied_params(factor, run.arm.values[factor.name]):
                values = [opt[1][p] for opt in factor.options if p in opt[1]]
                trial.suggest_categorical(f"{factor.name}.{p}", list(dict.fromkeys(values)))
        try:
            result = train_run(config, registry, run.arm, run.seed, device)
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
        return m[OBJECTIVE]

    return objective


def _varied_params(factor, level) -> list[str]:
    return sorted({p for lv, varied, _ in factor.options if primitive(lv) == level for p in varied})


def run_study(config: StudyConfig, registry: Registry, arms: list[Arm], storage_url: str,
              log: Callable[[str], None] = print) -> optuna.Study:
    """Run every missing (arm, seed) of the plan; return the Optuna study."""
    set_threads(config.train["threads"])
    storage = open_storage(storage_url)
    study = open_study(config, storage)
    study.set_user_attr("fingerprint", config.fingerprint())
    planned = plan_runs(config, arms)
    runs = {r.key: r for r in planned}
    logging.getLogger("optuna").setLevel(logging.ERROR)

    fail_stale(study)
    states = run_states(study)
    done = sum(1 for r in planned if any(is_done(t) for t in states.get(r.key, [])))
    progress = Progress(len(planned), done, log)
    if done:
        log(f"{done} of {len(planned)} runs already stored; {len(planned) - done} to train")
    objective = _objective(config, registry, runs, progress)
    while True:
        fail_stale(study)
        states = run_states(study)
        pending = [r for r in planned if not any(is_done(t) for t in states.get(r.key, []))]
        if not pending:
            break
        waiting = busy = 0
        for r in pending:
            trial_states = {t.state for t in states.get(r.key, [])}
            if TrialState.WAITING in trial_states:
                waiting += 1
            elif TrialState.RUNNING in trial_states:
                busy += 1
            else:
                study.enqueue_trial(_params(config, r), user_attrs={"run_key": r.key, "arm": r.arm.name,
                                                                    "seed": r.seed})
                waiting += 1
        if waiting:
            study.optimize(objective, n_trials=waiting, catch=(RunFailed,))
        else:
            log(f"waiting for {busy} run(s) in progress elsewhere (or stale, noticed within seconds)")
            time.sleep(3)
    return study


def _params(config: StudyConfig, run: PlannedRun) -> dict:
    """The arm as Optuna parameters (factor levels and varied sub-parameters)."""
    return dict(run.arm.values)
