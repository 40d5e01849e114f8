"""Writing a run's epoch values and outcome to Optuna in one transaction."""

import math

import optuna
import pytest
from optuna.samplers import RandomSampler

from ablate import trials
from ablate.storage import open_storage

EPOCHS = {1: 0.5, 2: 0.625, 3: float("nan"), 4: float("inf")}
ATTRS = {"result": {"history": [{"epoch": 1, "val_accuracy": 0.5}]}, "metric:gap": 0.02}


def written(tmp_path, name):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 'w.db'}"), study_name=name)
    trial = study.ask()
    trials.write_values(study, trial._trial_id, {1: 0.1, 2: 0.625}, {"metric:gap": 0.5, "kept": [1, "a"]})
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
    assert trial.user_attrs == {"kept": [1, "a"], **ATTRS}  # metric:gap overwritten, kept kept


def test_this_optuna_takes_the_batched_path(tmp_path):
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 'b.db'}"))
    assert trials._batchable(study._storage._backend)  # else the speed-up silently goes


def test_a_finished_trial_is_not_written(tmp_path):
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 'f.db'}"))
    trial = study.ask()
    study.tell(trial, 0.5)
    with pytest.raises(RuntimeError):
        trials.write_values(study, trial._trial_id, {1: 0.5})


@pytest.mark.parametrize("state, values", [("COMPLETE", [0.75]), ("FAIL", None), ("PRUNED", None)])
def test_finishing_a_trial_stores_what_tell_stores(tmp_path, state, values):
    state = optuna.trial.TrialState[state]
    studies = [
        optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / f'{n}.db'}"), sampler=RandomSampler())
        for n in ("ours", "tell")
    ]
    ours, told = (s.ask() for s in studies)
    trials.finish(studies[0], ours, state, values)
    studies[1].tell(told, values, state=state)
    a, b = studies[0].trials[0], studies[1].trials[0]
    assert (a.state, a.values) == (b.state, b.values) == (state, values)
    assert a.datetime_complete is not None


def test_a_sampler_that_learns_from_trials_still_hears_of_each(tmp_path, monkeypatch):
    heard = []
    sampler = optuna.samplers.TPESampler(seed=0)
    monkeypatch.setattr(sampler, "after_trial", lambda study, trial, state, values: heard.append((state, values)))
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 't.db'}"), sampler=sampler)
    trials.finish(study, study.ask(), optuna.trial.TrialState.COMPLETE, [0.5])
    assert heard == [(optuna.trial.TrialState.COMPLETE, [0.5])]


def test_a_grids_sampler_takes_the_path_without_tell():
    """Enumerated designs use RandomSampler; if it ever learns from trials, tell is used again."""
    assert optuna.samplers.RandomSampler.after_trial is optuna.samplers.BaseSampler.after_trial
