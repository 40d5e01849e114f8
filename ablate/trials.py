"""Runs as Optuna trials: one trial per training (so trainings can be counted),
created RUNNING with the arm's values as fixed parameters (never through
Optuna's queue), and finished with the run's outcome stored on it."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from ablate import attrs

if TYPE_CHECKING:  # torch: the report reads stored runs without it
    from ablate.training import RunResult

Suggest = Callable[[optuna.Trial], dict[str, Any]]


def run_states(study: optuna.Study) -> dict[str, list[FrozenTrial]]:
    """Trials grouped by run key."""
    out: dict[str, list[FrozenTrial]] = {}
    for t in study.get_trials(deepcopy=False):
        key = t.user_attrs.get(attrs.RUN_KEY)
        if key:
            out.setdefault(key, []).append(t)
    return out


def outcome(trial: FrozenTrial) -> str | None:
    """'complete', 'failed' or 'pruned' once stored (even if the worker died
    before Optuna marked the trial finished); None for an unfinished training."""
    if attrs.RESULT in trial.user_attrs:
        return "complete"
    if attrs.FAILURE in trial.user_attrs:
        return "failed"
    if attrs.PRUNED in trial.user_attrs or trial.state == TrialState.PRUNED:
        return "pruned"
    return None


def is_done(trial: FrozenTrial) -> bool:
    return outcome(trial) is not None


def run_outcome(trials: list[FrozenTrial]) -> str | None:
    """A run's outcome over its trainings: complete wins over pruned over failed."""
    found = {outcome(t) for t in trials}
    for state in ("complete", "pruned", "failed"):
        if state in found:
            return state
    return None


def start_trial(
    study: optuna.Study, fixed: dict[str, Any], user_attrs: dict[str, Any], suggest: Suggest
) -> optuna.Trial:
    """A RUNNING trial with ``fixed`` as its parameters, recorded through ``suggest``
    (so the study knows their distributions: dashboard, fANOVA)."""
    template = optuna.trial.create_trial(
        state=TrialState.RUNNING, system_attrs={"fixed_params": fixed}, user_attrs=user_attrs
    )
    trial_id = study._storage.create_new_trial(study._study_id, template_trial=template)
    trial = optuna.Trial(study, trial_id)
    suggest(trial)  # also registers the training with its coordinator
    return trial


def write_values(
    study: optuna.Study, trial_id: int, epochs: dict[int, float], user_attrs: dict[str, Any] | None = None
) -> None:
    """Epoch values and attributes of one trial in one transaction. Optuna's
    public API commits each value alone (about 7 ms each on SQLite: a run's 40
    epochs cost a third of its training); here a run's outcome costs about 20 ms."""
    user_attrs = user_attrs or {}
    backend: Any = getattr(study._storage, "_backend", study._storage)  # under Optuna's cache layer
    if not _batchable(backend):
        for step, value in epochs.items():
            study._storage.set_trial_intermediate_value(trial_id, step, value)
        for name, attr in user_attrs.items():
            study._storage.set_trial_user_attr(trial_id, name, attr)
        return
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(backend.scoped_session) as session:
        trial = models.TrialModel.find_or_raise_by_id(trial_id, session)
        backend.check_trial_is_updatable(trial_id, trial.state)
        _put_epochs(session, models.TrialIntermediateValueModel, trial_id, epochs)
        _put_attrs(session, models.TrialUserAttributeModel, trial_id, user_attrs)


def _put_epochs(session: Any, model: Any, trial_id: int, epochs: dict[int, float]) -> None:
    """A trial's epoch values, stored as Optuna stores them."""
    columns = ("intermediate_value", "intermediate_value_type")
    stored = {step: model.intermediate_value_to_stored_repr(v) for step, v in epochs.items()}
    _upsert(session, model, trial_id, "step", {s: dict(zip(columns, r, strict=True)) for s, r in stored.items()})


def _put_attrs(session: Any, model: Any, trial_id: int, user_attrs: dict[str, Any]) -> None:
    """User attributes, stored as Optuna stores them (JSON)."""
    _upsert(session, model, trial_id, "key", {k: {"value_json": json.dumps(v)} for k, v in user_attrs.items()})


def _upsert(session: Any, model: Any, trial_id: int, key: str, rows: dict[Any, dict[str, Any]]) -> None:
    """Insert or overwrite one trial's rows (``key`` value -> column values) with one
    query for those already there; Optuna's own setters make two per row."""
    if not rows:
        return
    column = getattr(model, key)
    query = session.query(model).filter(model.trial_id == trial_id, column.in_(list(rows)))
    there = {getattr(row, key): row for row in query.all()}
    for value, columns in rows.items():
        if value in there:
            for name, stored in columns.items():
                setattr(there[value], name, stored)
        else:
            session.add(model(trial_id=trial_id, **{key: value}, **columns))


def _batchable(backend: Any) -> bool:
    """Optuna's RDB storage with the internals this relies on (Optuna 4 and 5); else the public API."""
    try:
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session  # noqa: F401
    except ImportError:
        return False
    return (
        all(hasattr(backend, n) for n in ("scoped_session", "check_trial_is_updatable"))
        and hasattr(models.TrialIntermediateValueModel, "intermediate_value_to_stored_repr")
        and hasattr(models.TrialModel, "find_or_raise_by_id")
        and all(hasattr(models.TrialUserAttributeModel, c) for c in ("trial_id", "key", "value_json"))
    )


def store_result(
    study: optuna.Study,
    trial: optuna.Trial,
    result: RunResult,
    value: float | list[float],
    epochs: dict[int, float] | None = None,
) -> None:
    """The run's outcome on its trial, in one transaction with its unwritten
    epoch values: one attribute with everything, each final metric on its own
    (optuna-dashboard lists them); then the objective."""
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
    }
    metrics = {attrs.METRIC_PREFIX + name: metric for name, metric in result.metrics.items()}
    write_values(study, trial._trial_id, epochs or {}, {attrs.RESULT: record, **metrics})
    values = value if isinstance(value, list) else [value]
    if any(math.isnan(v) for v in values):  # no validation split: no objective; the result is stored
        finish(study, trial, TrialState.FAIL)
        return
    finish(study, trial, TrialState.COMPLETE, values)


def finish(study: optuna.Study, trial: optuna.Trial, state: TrialState, values: list[float] | None = None) -> None:
    """``study.tell``, without its three reads of the trial (a third of a run's
    storage time) where the sampler does nothing after a trial (grids, random)."""
    if type(study.sampler).after_trial is not optuna.samplers.BaseSampler.after_trial:
        study.tell(trial, values, state=state)
        return
    study._storage.set_trial_state_values(trial._trial_id, state, values)


def store_failure(
    study: optuna.Study, trial: optuna.Trial, failure: dict[str, Any], epochs: dict[int, float] | None = None
) -> None:
    failed = {attrs.FAILURE_DETAIL: failure, attrs.FAILURE: failure["reason"]}
    write_values(study, trial._trial_id, epochs or {}, failed)
    finish(study, trial, TrialState.FAIL)


def store_pruned(
    study: optuna.Study, trial: optuna.Trial, history: list[dict[str, float]], epochs: dict[int, float] | None = None
) -> None:
    write_values(study, trial._trial_id, epochs or {}, {attrs.PRUNED: {"history": history, "epochs": len(history)}})
    finish(study, trial, TrialState.PRUNED)


def abandon(study: optuna.Study, trial_id: int | None, why: str) -> None:
    """Close a training that will not finish (interrupted, its worker died):
    it stays as a record of the attempt, without an outcome, so the run is trained again."""
    if trial_id is None:
        return
    try:
        study._storage.set_trial_user_attr(trial_id, attrs.INTERRUPTED, why)
        study._storage.set_trial_state_values(trial_id, TrialState.FAIL)
    except (RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
        pass  # already finished by its own worker
