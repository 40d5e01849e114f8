"""Runs as Optuna trials: one trial per training (so trainings can be counted),
created RUNNING with the arm's values as fixed parameters (never through
Optuna's queue), and finished with the run's outcome stored on it."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from ablate.engine.store import attrs, optuna_internals, optuna_schema
from ablate.engine.store.db_patience import retried
from ablate.engine.store.optuna_internals import (
    StoredTrial,
    engine_of,
    read_trials,
    readable,
    storage_of,
    study_id_of,
    trial_id_of,
)

if TYPE_CHECKING:  # torch: the report reads stored runs without it
    from ablate.train.run_result import RunResult

Suggest = Callable[[optuna.Trial], dict[str, Any]]


def run_states(study: optuna.Study) -> dict[str, list[FrozenTrial]]:
    """Trials grouped by run key."""
    out: dict[str, list[FrozenTrial]] = {}
    for t in study.get_trials(deepcopy=False):
        key = t.user_attrs.get(attrs.RUN_KEY)
        if key:
            out.setdefault(key, []).append(t)
    return out


# What a run's outcome is read from (the report's read skips the rest: specs, values, metrics)
OUTCOME_ATTRS = (attrs.RUN_KEY, attrs.RESULT, attrs.FAILURE, attrs.FAILURE_DETAIL, attrs.PRUNED, attrs.REPEAT_OF)


def run_outcomes(study: optuna_schema.ReportStudy) -> dict[str, list[FrozenTrial | StoredTrial]]:
    """Trials grouped by run key, with only OUTCOME_ATTRS among their user attributes:
    read in bulk where the storage allows it (SQLite read directly, or Optuna's tables
    through its ORM), else through Optuna's API."""
    trials: list[FrozenTrial | StoredTrial] = []
    if isinstance(study, optuna_schema.SqliteStudy):
        trials.extend(optuna_schema.read_trials(study, OUTCOME_ATTRS))
    elif readable(study):
        trials.extend(read_trials(study, OUTCOME_ATTRS))
    else:
        trials.extend(study.get_trials(deepcopy=False))
    out: dict[str, list[FrozenTrial | StoredTrial]] = {}
    for t in trials:
        key = t.user_attrs.get(attrs.RUN_KEY)
        if key:
            out.setdefault(key, []).append(t)
    return out


def outcome(trial: FrozenTrial | StoredTrial) -> str | None:
    """'complete', 'failed' or 'pruned' once stored (even if the worker died
    before Optuna marked the trial finished); None for an unfinished training."""
    if attrs.RESULT in trial.user_attrs:
        return "complete"
    if attrs.FAILURE in trial.user_attrs:
        return "failed"
    if attrs.PRUNED in trial.user_attrs or trial.state == TrialState.PRUNED:
        return "pruned"
    return None


def is_done(trial: FrozenTrial | StoredTrial) -> bool:
    return outcome(trial) is not None


def run_outcome(trials: list[FrozenTrial]) -> str | None:
    """A run's outcome over its trainings: complete wins over pruned over failed."""
    found = {outcome(t) for t in trials}
    for state in ("complete", "pruned", "failed"):
        if state in found:
            return state
    return None


@dataclass(frozen=True)
class TrialRef:
    """A trial created in bulk: its id (named as optuna.Trial names it, so code
    that writes to trials takes either) and its number (to tell a sampler)."""

    _trial_id: int
    number: int


AnyTrial = optuna.Trial | TrialRef


class NotFixed(Exception):
    """A parameter the arm does not fix: the sampler must choose it (``start_trial``)."""


class FixedSuggestions:
    """Stands in for a trial in ``suggest``: answers each ``suggest_*`` with the
    fixed value and records the distribution, as Optuna's Trial records a fixed parameter."""

    def __init__(self, fixed: dict[str, Any]):
        self.fixed = fixed
        self.params: dict[str, Any] = {}
        self.distributions: dict[str, BaseDistribution] = {}

    def _record(self, name: str, distribution: BaseDistribution) -> Any:
        if name not in self.fixed:
            raise NotFixed(name)
        value = self.fixed[name]
        distribution.to_internal_repr(value)  # a value outside its distribution raises, as in Optuna
        self.params[name], self.distributions[name] = value, distribution
        return value

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self._record(name, CategoricalDistribution(choices))

    def suggest_int(self, name: str, low: int, high: int, log: bool = False) -> Any:
        return self._record(name, IntDistribution(low, high, log=log))

    def suggest_float(self, name: str, low: float, high: float, log: bool = False) -> Any:
        return self._record(name, FloatDistribution(low, high, log=log))


def start_trials(
    study: optuna.Study, runs: Sequence[tuple[dict[str, Any], dict[str, Any]]], suggest: Suggest
) -> list[AnyTrial]:
    """RUNNING trials, one per (fixed parameters, user attributes), in one transaction:
    ``suggest`` is called on a stand-in that records the fixed parameters. Where a
    parameter is not fixed, or this Optuna lacks the internals, each trial is made
    through Optuna's API instead (``start_trial``)."""
    try:
        made = []
        for fixed, user_attrs in runs:
            recorder = FixedSuggestions(fixed)
            suggest(recorder)  # type: ignore[arg-type]  # it answers every suggest_* used
            made.append(optuna_internals.NewTrial(recorder.params, recorder.distributions, user_attrs, fixed))
    except NotFixed:
        made = []
    if not made or not optuna_internals.batchable(study):
        return [start_trial(study, fixed, user_attrs, suggest) for fixed, user_attrs in runs]
    return [TrialRef(trial_id, number) for trial_id, number in optuna_internals.create_running(study, made)]


def start_trial(
    study: optuna.Study, fixed: dict[str, Any], user_attrs: dict[str, Any], suggest: Suggest
) -> optuna.Trial:
    """A RUNNING trial with ``fixed`` as its parameters, recorded through ``suggest``
    (so the study knows their distributions: dashboard, fANOVA)."""
    template = optuna.trial.create_trial(
        state=TrialState.RUNNING, system_attrs={"fixed_params": fixed}, user_attrs=user_attrs
    )
    trial_id = storage_of(study).create_new_trial(study_id_of(study), template_trial=template)
    trial = optuna.Trial(study, trial_id)
    suggest(trial)
    return trial


def write_values(
    study: optuna.Study, trial_id: int, epochs: dict[int, float], user_attrs: dict[str, Any] | None = None
) -> None:
    """Epoch values and attributes of one trial in one transaction. Optuna's
    public API commits each value alone (about 7 ms each on SQLite: a run's 40
    epochs cost a third of its training)."""
    write_outcomes(study, [optuna_internals.TrialUpdate(trial_id, epochs, user_attrs or {})])


def write_outcomes(
    study: optuna.Study, updates: Sequence[optuna_internals.TrialUpdate], not_mine: optuna_internals.Guard | None = None
) -> set[int]:
    """Several trials' epoch values, attributes and final states: one transaction
    where this Optuna allows it, else through its public API. Returns the trials
    left unwritten because ``not_mine`` names them (their runs held by another worker)."""
    if optuna_internals.batchable(study):
        return optuna_internals.write(study, updates, not_mine)
    skipped = _not_mine_now(study, [u.trial_id for u in updates], not_mine)
    for u in updates:
        if u.trial_id in skipped:
            continue
        for step, value in u.epochs.items():
            storage_of(study).set_trial_intermediate_value(u.trial_id, step, value)
        for name, attr in u.user_attrs.items():
            storage_of(study).set_trial_user_attr(u.trial_id, name, attr)
        if u.state is not None:
            storage_of(study).set_trial_state_values(u.trial_id, u.state, u.values)
    return skipped


def _not_mine_now(study: optuna.Study, trial_ids: list[int], not_mine: optuna_internals.Guard | None) -> set[int]:
    """``not_mine`` asked in a transaction of its own (Optuna's public API writes in others)."""
    if not_mine is None or not trial_ids:
        return set()
    return retried(_ask_guard)(engine_of(study), trial_ids, not_mine)


def _ask_guard(engine: Any, trial_ids: list[int], not_mine: optuna_internals.Guard) -> set[int]:
    with engine.begin() as conn:
        return not_mine(conn, trial_ids)


@dataclass
class Outcome:
    """A run's outcome, to store on its trial: attributes, final state, objective values."""

    trial: AnyTrial
    user_attrs: dict[str, Any]
    state: TrialState
    values: list[float] | None = None
    epochs: dict[int, float] = field(default_factory=dict)  # epoch values not yet written


def result_outcome(
    trial: AnyTrial, result: RunResult, value: float | list[float], epochs: dict[int, float] | None = None
) -> Outcome:
    """One attribute with everything, each final metric on its own (optuna-dashboard
    lists them), and the objective; a NaN objective (no validation split) fails the
    trial, with its result stored."""
    record = {
        "metrics": result.metrics,
        "history": result.history,
        "epochs": result.epochs,
        "stop_reason": result.stop_reason,
        "seconds": result.seconds,
        "config": result.config,
        "device": result.device,
        "threads": result.threads,
        "sizes": result.sizes,
        "versions": result.versions,
        "stacked_with": result.stack,
        **({"unstacked": result.unstacked} if result.unstacked else {}),
        **({"compile": result.compile} if result.compile else {}),
    }
    metrics = {attrs.METRIC_PREFIX + name: metric for name, metric in result.metrics.items()}
    values = value if isinstance(value, list) else [value]
    if any(math.isnan(v) for v in values):
        return Outcome(trial, {attrs.RESULT: record, **metrics}, TrialState.FAIL, None, epochs or {})
    return Outcome(trial, {attrs.RESULT: record, **metrics}, TrialState.COMPLETE, values, epochs or {})


def failure_outcome(trial: AnyTrial, failure: dict[str, Any], epochs: dict[int, float] | None = None) -> Outcome:
    failed = {attrs.FAILURE_DETAIL: failure, attrs.FAILURE: failure["reason"]}
    return Outcome(trial, failed, TrialState.FAIL, None, epochs or {})


def pruned_outcome(trial: AnyTrial, history: list[dict[str, float]], epochs: dict[int, float] | None = None) -> Outcome:
    pruned = {attrs.PRUNED: {"history": history, "epochs": len(history)}}
    return Outcome(trial, pruned, TrialState.PRUNED, None, epochs or {})


def store_outcomes(
    study: optuna.Study, outcomes: Sequence[Outcome], not_mine: optuna_internals.Guard | None = None
) -> list[Outcome]:
    """Store the outcomes, each with its unwritten epoch values: all in one transaction
    where the sampler learns nothing from finished trials (grids, random); else each
    through ``tell``, so the sampler hears of it. Returns the outcomes that came late,
    not stored: their trial already finished (closed by a worker that took the run
    over) or, by ``not_mine``, their run held by another worker now."""
    if learns(study.sampler):
        late = []
        for o in outcomes:
            if _not_mine_now(study, [trial_id_of(o.trial)], not_mine):
                late.append(o)
                continue
            try:
                write_values(study, trial_id_of(o.trial), o.epochs, o.user_attrs)
                finish(study, o.trial, o.state, o.values)
            except RuntimeError:  # Optuna's UpdateFinishedTrialError
                late.append(o)
        return late
    updates = [
        optuna_internals.TrialUpdate(trial_id_of(o.trial), o.epochs, o.user_attrs, o.state, o.values) for o in outcomes
    ]
    try:
        skipped = write_outcomes(study, updates, not_mine)
    except RuntimeError:  # a trial already finished: store the others one by one
        if len(outcomes) == 1:
            return list(outcomes)
        return [late for o in outcomes for late in store_outcomes(study, [o], not_mine)]
    return [o for o in outcomes if trial_id_of(o.trial) in skipped]


def learns(sampler: optuna.samplers.BaseSampler) -> bool:
    return type(sampler).after_trial is not optuna.samplers.BaseSampler.after_trial


def finish(study: optuna.Study, trial: AnyTrial, state: TrialState, values: list[float] | None = None) -> None:
    """``study.tell``, without its three reads of the trial (a third of a run's
    storage time) where the sampler does nothing after a trial (grids, random)."""
    if learns(study.sampler):
        study.tell(trial if isinstance(trial, optuna.Trial) else trial.number, values, state=state)
        return
    storage_of(study).set_trial_state_values(trial_id_of(trial), state, values)


def abandon(study: optuna.Study, trial_id: int | None, why: str) -> None:
    """Close a training that will not finish (interrupted, its worker died):
    it stays as a record of the attempt, without an outcome, so the run is trained again."""
    if trial_id is None:
        return
    try:
        storage_of(study).set_trial_user_attr(trial_id, attrs.INTERRUPTED, why)
        storage_of(study).set_trial_state_values(trial_id, TrialState.FAIL)
    except (RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
        pass  # already finished by its own worker
