"""A study's trials read in bulk: a few queries on Optuna's RDB tables instead of
``study.get_trials()``, which builds a FrozenTrial per trial with every parameter,
attribute and value (15 s for 10,000 trials with their epoch values).

Only what a reader asks for is read: the user attributes it names (the report
needs six of a trial's twenty), and epoch values only when asked. The answer is
Optuna's own: the test compares it with ``study.get_trials()``. ``readable``
says whether this Optuna has the tables relied on; where not (or for a storage
that is not Optuna's RDB storage) callers use the public API.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import TrialState

from ablate.trial_rows import backend_of


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
    backend = backend_of(study)
    if not hasattr(backend, "scoped_session"):
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
