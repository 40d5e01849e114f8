"""What the direct SQLite read relies on in Optuna's schema is still there: where Optuna
renames a table or column, or stores a value or a state differently, this fails, not a report."""

from __future__ import annotations

import math

import pytest
from optuna.storages._rdb import models
from optuna.trial import TrialState

from ablate.engine.store import optuna_schema

MODELS = {model.__tablename__: model for model in models.BaseModel.__subclasses__()}


@pytest.mark.parametrize("table", sorted(optuna_schema.TABLES))
def test_every_column_read_directly_is_in_optunas_models(table):
    assert table in MODELS, f"Optuna has no table {table!r} any more"
    columns = {column.name for column in MODELS[table].__table__.columns}
    assert set(optuna_schema.TABLES[table]) <= columns


@pytest.mark.parametrize("value", [0.25, -3.0, math.inf, -math.inf, math.nan])
def test_values_stored_by_optuna_read_back_as_optuna_reads_them(value):
    step = models.TrialIntermediateValueModel
    stored, kind = step.intermediate_value_to_stored_repr(value)
    got = optuna_schema._value(stored, kind.name)  # SQLAlchemy stores an Enum by its name
    want = step.stored_repr_to_intermediate_value(stored, kind)
    assert got == want or (math.isnan(got) and math.isnan(want))
    if not math.isnan(value):
        stored, objective_kind = models.TrialValueModel.value_to_stored_repr(value)
        assert optuna_schema._value(stored, objective_kind.name) == value


def test_a_value_optuna_would_not_have_stored_is_an_error_not_a_guess():
    with pytest.raises(ValueError, match="would not have written"):
        optuna_schema._value(None, "FINITE")


def test_trial_states_are_stored_by_the_names_read_back():
    column = models.TrialModel.__table__.columns["state"]
    assert list(column.type.enums) == [state.name for state in TrialState]
