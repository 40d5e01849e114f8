"""Writing a run's epoch values and outcome to Optuna in one transaction."""

import math

import optuna
import pytest

from ablate import trials
from ablate.storage import open_storage

EPOCHS = {1: 0.5, 2: 0.625, 3: float("nan"), 4: float("inf")}
ATTRS = {"result": {"history": [{"epoch": 1, "val_accuracy": 0.5}]}, "metric:gap": 0.02}


def written(tmp_path, name):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 'w.db'}"), study_name=name)
    trial = study.ask()
    trials.write_values(study, trial._trial_id, {1: 0.1, 2: 0.625})
    trials.write_values(study, trial._trial_id, EPOCHS, ATTRS)  # epoch 1 overwritten, 3 and 4 new
    return study.trials[0]


def same(a, b):
    return a == b or (math.isnan(a) and math.isnan(b))


@pytest.mark.parametrize("batched", [True, False])
def test_batched_writes_store_what_optunas_public_api_stores(tmp_path, monkeypatch, batched):
    if not batched:
        monkeypatch.setattr(trials, "_batchable", lambda backend: False)
    trial = written(tmp_path, f"s{batched}")
    assert sorted(trial.intermediate_values) == [1, 2, 3, 4]
    assert all(same(trial.intermediate_values[k], v) for k, v in EPOCHS.items())
    assert trial.user_attrs == ATTRS


def test_this_optuna_takes_the_batched_path(tmp_path):
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 'b.db'}"))
    assert trials._batchable(study._storage._backend)  # else the speed-up silently goes


def test_a_finished_trial_is_not_written(tmp_path):
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 'f.db'}"))
    trial = study.ask()
    study.tell(trial, 0.5)
    with pytest.raises(RuntimeError):
        trials.write_values(study, trial._trial_id, {1: 0.5})
