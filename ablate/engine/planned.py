"""The plan as Optuna sees it: planned runs, the arm as Optuna parameters,
what each trial records, and the search stage's trials.

Enumerated designs train their exact arms (the sampler is never consulted for
them), so the arm set is exactly the design's: no missing, no extra, no seed
treated as a hyperparameter. Sampled designs let a sampler (TPE, random,
NSGA-II) choose arms within a budget, each run with the search seed; a search
may then confirm its best arms over the study's seeds. A run is identified by
its RunSpec hash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from ablate.engine.store import attrs
from ablate.engine.store.record import RunEntry
from ablate.engine.store.trials import is_done
from ablate.plugin.registry import Registry
from ablate.spec import RunSpec
from ablate.study.config import Range, StudyConfig
from ablate.study.design import Arm, build_arms, primitive, run_spec, sampled_arm


@dataclass(frozen=True)
class PlannedRun:
    arm: Arm
    seed: int
    spec: RunSpec
    stage: str = attrs.MAIN  # "main" for enumerated designs; "search" or "confirm" for a search

    @property
    def key(self) -> str:
        return self.spec.key


def plan_runs(
    config: StudyConfig, arms: list[Arm], stage: str = attrs.MAIN, seeds: list[int] | None = None
) -> list[PlannedRun]:
    return [
        PlannedRun(arm, seed, run_spec(config, arm, seed), stage)
        for arm in arms
        for seed in (config.seeds if seeds is None else seeds)
    ]


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
        ranges = f.ranges.get(raw_level, {}) if f.kind else {}  # a setting's level may be a list
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
    return {
        attrs.RUN_KEY: run.key,
        attrs.ARM: run.arm.name,
        attrs.ARM_KEY: run.arm.key,
        attrs.SEED: run.seed,
        attrs.STAGE: run.stage,
        attrs.VALUES: run.arm.values,
        attrs.FINGERPRINT: fingerprint,
        attrs.SPEC: run.spec.identity_json(),
    }


def search_trials(study: optuna.Study, config: StudyConfig) -> list[FrozenTrial]:
    """This study file's sampled trials (same fixed settings), in order."""
    fingerprint = config.fingerprint()
    return [
        t
        for t in study.get_trials(deepcopy=False)
        if t.user_attrs.get(attrs.STAGE) == attrs.SEARCH and t.user_attrs.get(attrs.FINGERPRINT) == fingerprint
    ]


def searched_runs(study: optuna.Study, config: StudyConfig) -> list[PlannedRun]:
    """The search stage's trained runs, one per distinct arm, in order."""
    runs: dict[str, PlannedRun] = {}
    for t in search_trials(study, config):
        if attrs.REPEAT_OF in t.user_attrs or not is_done(t):
            continue
        arm = sampled_arm(config, t.user_attrs[attrs.VALUES])
        seed = int(t.user_attrs[attrs.SEED])
        runs.setdefault(t.user_attrs[attrs.RUN_KEY], PlannedRun(arm, seed, run_spec(config, arm, seed), attrs.SEARCH))
    return list(runs.values())


def best_arms(study: optuna.Study, searched: list[PlannedRun], k: int) -> list[Arm]:
    """The K search arms with the highest validation accuracy (completed runs only)."""
    value = {
        t.user_attrs.get(attrs.RUN_KEY): t.value
        for t in study.get_trials(deepcopy=False)
        if t.state == TrialState.COMPLETE and t.value is not None and len(t.values) == 1
    }
    ranked = sorted((r for r in searched if r.key in value), key=lambda r: -value[r.key])
    return [r.arm for r in ranked[:k]]


def study_arms(config: StudyConfig, registry: Registry) -> list[Arm]:
    """The study's arms, orderings that build one network kept once (building a
    model to tell needs torch, so the engine, not the study layer, supplies it)."""

    def network(spec: RunSpec) -> str:
        from ablate.train.build import model_signature  # torch: only for an orderings design

        return model_signature(spec, registry)

    return build_arms(config, network)


def record_entries(planned: Sequence[PlannedRun]) -> list[RunEntry]:
    """The plan as stored with the study, so a report needs only the storage."""
    return [RunEntry(r.key, r.arm.name, r.seed, dict(r.arm.values), r.stage, r.arm.key) for r in planned]
