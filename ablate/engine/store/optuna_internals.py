"""Every use of Optuna's private internals, in one module: the storage behind a
study, trial and study ids, a read-only open without schema migrations, trial
rows written in bulk (many trials created, or given their epoch values, attributes
and final state, in one transaction, through Optuna's own ORM models and stored
exactly as its RDB storage stores them), and a study's trials read in bulk
(``read_trials``: four queries where ``study.get_trials()`` builds a FrozenTrial per
trial with everything on it, 15 s for 10,000 trials with their epoch values).
``tests/engine/store/test_optuna_internals.py`` fails loudly when Optuna moves any of them.

Optuna's public API commits every parameter, attribute and value on its own,
and reads each row before writing it: a quickstart's 36 trials cost the
coordinator over a second, on the cores that train. ``batchable`` says whether
this Optuna has the internals relied on here (Optuna 4 and 5 do); where not,
callers take the public API.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import optuna
from optuna.distributions import BaseDistribution, check_distribution_compatibility, distribution_to_json
from optuna.trial import TrialState

from ablate.engine.store.db_patience import retried

if TYPE_CHECKING:  # SQLAlchemy: imported where a storage is written, not where a report reads SQLite
    import sqlalchemy as sa

# Given a session in the storing transaction and trial ids, those whose runs this worker no longer holds.
Guard = Callable[[Any, list[int]], set[int]]


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


def study_user_attrs(study: optuna.Study) -> dict[str, Any]:
    """The study's user attributes as stored, without ``Study.user_attrs``' deep copy of them
    (a 10,000-run plan takes a second to copy, each time it is asked for)."""
    return dict(storage_of(study).get_study_user_attrs(study_id_of(study)))


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


@retried
def create_running(study: optuna.Study, trials: Sequence[NewTrial]) -> list[tuple[int, int]]:
    """Create the trials, RUNNING, in one transaction; their (trial id, number) in order.
    Numbers follow the study's count, under the study's row lock as Optuna takes it."""
    import sqlalchemy as sa  # here, not at the top: a report reading SQLite never loads it
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


@retried
def write(study: optuna.Study, updates: Sequence[TrialUpdate], not_mine: Guard | None = None) -> set[int]:
    """Every update in one transaction; a trial that is already finished raises
    (as Optuna's setters do) and nothing is written. ``not_mine``, asked in the
    same transaction, names trials whose runs another worker holds now: they are
    left as they are, and returned."""
    from optuna.storages._rdb import models

    if not updates:
        return set()
    backend = backend_of(study)
    with _session(study) as session:
        skipped = not_mine(session, [u.trial_id for u in updates]) if not_mine is not None else set()
        updates = [u for u in updates if u.trial_id not in skipped]
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
    return skipped


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


@dataclass
class StoredTrial:
    """The parts of a FrozenTrial a reader asked for, under the same names."""

    _trial_id: int
    number: int
    state: TrialState
    values: list[float] | None = None
    user_attrs: dict[str, Any] = field(default_factory=dict)
    intermediate_values: dict[int, float] = field(default_factory=dict)

    @property
    def value(self) -> float | None:
        return self.values[0] if self.values and len(self.values) == 1 else None


def readable(study: optuna.Study) -> bool:
    """Optuna's RDB storage, with the models and conversions read here."""
    if not hasattr(backend_of(study), "scoped_session"):
        return False
    try:
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session  # noqa: F401
    except ImportError:
        return False
    needed = {
        models.TrialModel: ("trial_id", "number", "study_id", "state"),
        models.TrialValueModel: ("trial_id", "objective", "value", "value_type"),
        models.TrialUserAttributeModel: ("trial_id", "key", "value_json"),
        models.TrialIntermediateValueModel: ("trial_id", "step", "intermediate_value", "intermediate_value_type"),
    }
    return (
        all(hasattr(model, c) for model, columns in needed.items() for c in columns)
        and hasattr(models.TrialValueModel, "stored_repr_to_value")
        and hasattr(models.TrialIntermediateValueModel, "stored_repr_to_intermediate_value")
    )


@retried
def read_trials(
    study: optuna.Study, attr_keys: Collection[str] | None = None, epochs: bool = False
) -> list[StoredTrial]:
    """Every trial of the study, by number: state, objective values, the user attributes
    named in ``attr_keys`` (all of them for None) and, with ``epochs``, the epoch values.
    Four queries at most, whatever the number of trials. Call only where ``readable``."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    trial, value, attr, step = (
        models.TrialModel,
        models.TrialValueModel,
        models.TrialUserAttributeModel,
        models.TrialIntermediateValueModel,
    )
    with _create_scoped_session(backend_of(study).scoped_session) as session:
        rows = (
            session.query(trial.trial_id, trial.number, trial.state)
            .filter(trial.study_id == study._study_id)
            .order_by(trial.number)
            .all()
        )
        trials: dict[Any, StoredTrial] = {tid: StoredTrial(tid, number, state) for tid, number, state in rows}
        ours = session.query(trial.trial_id).filter(trial.study_id == study._study_id)
        values: dict[int, dict[int, float]] = {}
        for tid, objective, stored, kind in (
            session.query(value.trial_id, value.objective, value.value, value.value_type)
            .filter(value.trial_id.in_(ours))
            .all()
        ):
            values.setdefault(tid, {})[objective] = value.stored_repr_to_value(stored, kind)
        query = session.query(attr.trial_id, attr.key, attr.value_json).filter(attr.trial_id.in_(ours))
        if attr_keys is not None:
            query = query.filter(attr.key.in_(sorted(attr_keys)))
        for owner, key, text in query.order_by(attr.trial_user_attribute_id).all():
            trials[owner].user_attrs[key] = json.loads(text)
        if epochs:
            for owner, epoch, at, at_kind in (
                session.query(step.trial_id, step.step, step.intermediate_value, step.intermediate_value_type)
                .filter(step.trial_id.in_(ours))
                .order_by(step.trial_intermediate_value_id)
                .all()
            ):
                trials[owner].intermediate_values[epoch] = step.stored_repr_to_intermediate_value(at, at_kind)
    for tid, by_objective in values.items():
        trials[tid].values = [by_objective[k] for k in sorted(by_objective)]
    return list(trials.values())
