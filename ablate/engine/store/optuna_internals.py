"""Every use of Optuna's private internals, in one module: the storage behind a
study, trial and study ids, a read-only open without schema migrations, and trial
rows written in bulk (many trials created, or given their epoch values, attributes
and final state, in one transaction, through Optuna's own ORM models and stored
exactly as its RDB storage stores them). ``tests/engine/store/test_optuna_internals.py``
fails loudly when Optuna moves any of them.

Optuna's public API commits every parameter, attribute and value on its own,
and reads each row before writing it: a quickstart's 36 trials cost the
coordinator over a second, on the cores that train. ``batchable`` says whether
this Optuna has the internals relied on here (Optuna 4 and 5 do); where not,
callers take the public API.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
import sqlalchemy as sa
from optuna.distributions import BaseDistribution, check_distribution_compatibility, distribution_to_json
from optuna.trial import TrialState


@dataclass(frozen=True)
class NewTrial:
    """A RUNNING trial to create: its parameters (with their distributions, as
    ``suggest_*`` records them), user attributes, and fixed parameters."""

    params: dict[str, Any]
    distributions: dict[str, BaseDistribution]
    user_attrs: dict[str, Any]
    fixed: dict[str, Any]


@dataclass
class TrialUpdate:
    """What to write on one trial: epoch values, user attributes, and optionally its final state."""

    trial_id: int
    epochs: dict[int, float] = field(default_factory=dict)
    user_attrs: dict[str, Any] = field(default_factory=dict)
    state: TrialState | None = None
    values: list[float] | None = None


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage a study writes through (its methods are public; the attribute is not)."""
    return study._storage


def study_id_of(study: optuna.Study) -> int:
    return int(study._study_id)


def trial_id_of(trial: Any) -> int:
    """The storage id of an ``optuna.Trial`` or a ``FrozenTrial``."""
    return int(trial._trial_id)


def backend_of(study: optuna.Study) -> Any:
    return getattr(study._storage, "_backend", study._storage)  # under Optuna's cache layer


def engine_of(study: optuna.Study) -> sa.engine.Engine:
    """The SQLAlchemy engine of a study's RDB storage (run claims share its database)."""
    engine: sa.engine.Engine = backend_of(study).engine
    return engine


def load_models() -> None:
    """Import Optuna's ORM models (a prefetch step: where they move, this fails and costs nothing)."""
    from optuna.storages._rdb import models  # noqa: F401


def open_without_migrations(url: str) -> optuna.storages.RDBStorage | None:
    """A storage opened with no table creation and no schema check, so alembic
    (0.3 s of imports) is never loaded; None where Optuna has moved what this
    relies on or the quick open fails (an older schema, say)."""
    from optuna.storages._rdb import storage as rdb

    manager = getattr(rdb, "_VersionManager", None)
    check = getattr(manager, "_init_alembic", None)
    if manager is None or check is None:
        return None
    try:
        manager._init_alembic = lambda self: None  # it only migrates a new or old schema
        storage = optuna.storages.RDBStorage(url, skip_compatibility_check=True, skip_table_creation=True)
        storage.get_all_studies()
        return storage
    except Exception:
        return None
    finally:
        manager._init_alembic = check


def batchable(study: optuna.Study) -> bool:
    """Optuna's RDB storage with the internals this relies on; else the public API."""
    backend = backend_of(study)
    try:
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session  # noqa: F401
    except ImportError:
        return False
    return (
        all(
            hasattr(backend, n)
            for n in ("scoped_session", "check_trial_is_updatable", "_set_trial_value_without_commit")
        )
        and hasattr(models.TrialIntermediateValueModel, "intermediate_value_to_stored_repr")
        and hasattr(models.TrialModel, "find_or_raise_by_id")
        and hasattr(models.StudyModel, "find_or_raise_by_id")
        and all(hasattr(models.TrialUserAttributeModel, c) for c in ("trial_id", "key", "value_json"))
        and all(
            hasattr(models.TrialParamModel, c) for c in ("trial_id", "param_name", "param_value", "distribution_json")
        )
    )


def _session(study: optuna.Study) -> Any:
    from optuna.storages._rdb.storage import _create_scoped_session

    return _create_scoped_session(backend_of(study).scoped_session)


def create_running(study: optuna.Study, trials: Sequence[NewTrial]) -> list[tuple[int, int]]:
    """Create the trials, RUNNING, in one transaction; their (trial id, number) in order.
    Numbers follow the study's count, under the study's row lock as Optuna takes it."""
    from optuna.storages._rdb import models

    study_id = study_id_of(study)
    with _session(study) as session:
        models.StudyModel.find_or_raise_by_id(study_id, session, for_update=True)
        _check_distributions(session, study_id, trials)
        count = session.query(sa.func.count(models.TrialModel.trial_id)).filter_by(study_id=study_id).scalar()
        now = dt.datetime.now()
        rows = [
            models.TrialModel(study_id=study_id, number=count + i, state=TrialState.RUNNING, datetime_start=now)
            for i in range(len(trials))
        ]
        session.add_all(rows)
        session.flush()  # assigns the trial ids
        for row, trial in zip(rows, trials, strict=True):
            session.add_all(_trial_children(row.trial_id, trial))
        return [(row.trial_id, row.number) for row in rows]


def _trial_children(trial_id: int, trial: NewTrial) -> list[Any]:
    from optuna.storages._rdb import models

    out: list[Any] = [
        models.TrialParamModel(
            trial_id=trial_id,
            param_name=name,
            param_value=trial.distributions[name].to_internal_repr(value),
            distribution_json=distribution_to_json(trial.distributions[name]),
        )
        for name, value in trial.params.items()
    ]
    out += [
        models.TrialUserAttributeModel(trial_id=trial_id, key=k, value_json=json.dumps(v))
        for k, v in trial.user_attrs.items()
    ]
    out.append(
        models.TrialSystemAttributeModel(trial_id=trial_id, key="fixed_params", value_json=json.dumps(trial.fixed))
    )
    return out


def _check_distributions(session: Any, study_id: int, trials: Sequence[NewTrial]) -> None:
    """Each parameter's distribution agrees with the one the study already holds (as Optuna checks)."""
    from optuna.distributions import json_to_distribution
    from optuna.storages._rdb import models

    wanted: dict[str, BaseDistribution] = {}
    for trial in trials:
        for name, distribution in trial.distributions.items():
            if name in wanted:
                check_distribution_compatibility(wanted[name], distribution)
            wanted.setdefault(name, distribution)
    for name, distribution in wanted.items():
        stored = (
            session.query(models.TrialParamModel.distribution_json)
            .join(models.TrialModel)
            .filter(models.TrialModel.study_id == study_id, models.TrialParamModel.param_name == name)
            .first()
        )
        if stored is not None:
            check_distribution_compatibility(json_to_distribution(stored[0]), distribution)


def write(study: optuna.Study, updates: Sequence[TrialUpdate]) -> None:
    """Every update in one transaction; a trial that is already finished raises
    (as Optuna's setters do) and nothing is written."""
    from optuna.storages._rdb import models

    if not updates:
        return
    backend = backend_of(study)
    with _session(study) as session:
        rows = {
            u.trial_id: models.TrialModel.find_or_raise_by_id(u.trial_id, session, for_update=True) for u in updates
        }
        for u in updates:
            backend.check_trial_is_updatable(u.trial_id, rows[u.trial_id].state)
        stored_epochs = {(u.trial_id, step): _epoch_columns(value) for u in updates for step, value in u.epochs.items()}
        _upsert(session, models.TrialIntermediateValueModel, "step", stored_epochs)
        stored_attrs = {
            (u.trial_id, k): {"value_json": json.dumps(v)} for u in updates for k, v in u.user_attrs.items()
        }
        _upsert(session, models.TrialUserAttributeModel, "key", stored_attrs)
        now = dt.datetime.now()
        for u in updates:
            if u.state is None:
                continue
            row = rows[u.trial_id]
            for objective, value in enumerate(u.values or []):
                backend._set_trial_value_without_commit(session, row, objective, value)
            row.state = u.state
            if u.state.is_finished():
                row.datetime_complete = now


def _epoch_columns(value: float) -> dict[str, Any]:
    from optuna.storages._rdb import models

    stored, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(value)
    return {"intermediate_value": stored, "intermediate_value_type": kind}


def _upsert(session: Any, model: Any, key: str, rows: dict[tuple[int, Any], dict[str, Any]]) -> None:
    """Insert or overwrite rows keyed by (trial id, ``key`` value), with one query
    for those already there (Optuna's own setters make two per row)."""
    if not rows:
        return
    column = getattr(model, key)
    trial_ids = sorted({t for t, _ in rows})
    query = session.query(model).filter(model.trial_id.in_(trial_ids), column.in_(sorted({k for _, k in rows})))
    there = {(row.trial_id, getattr(row, key)): row for row in query.all()}
    for (trial_id, value), columns in rows.items():
        if (trial_id, value) in there:
            for name, stored in columns.items():
                setattr(there[trial_id, value], name, stored)
        else:
            session.add(model(trial_id=trial_id, **{key: value}, **columns))
