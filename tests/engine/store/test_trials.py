"""Creating trials, and writing runs' epoch values and outcomes, in one transaction:
what is stored is what Optuna's own API stores."""

import math

import optuna
import pytest
from optuna.samplers import RandomSampler

from ablate.engine.store import optuna_internals, trials
from ablate.engine.store.optuna_internals import trial_id_of
from ablate.engine.store.storage import open_storage

EPOCHS = {1: 0.5, 2: 0.625, 3: float("nan"), 4: float("inf")}
ATTRS = {"result": {"history": [{"epoch": 1, "val_accuracy": 0.5}]}, "metric:gap": 0.02}


def written(tmp_path, name):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 'w.db'}"), study_name=name)
    trial = study.ask()
    trials.write_values(study, trial_id_of(trial), {1: 0.1, 2: 0.625}, {"metric:gap": 0.5, "kept": [1, "a"]})
    trials.write_values(study, trial_id_of(trial), EPOCHS, ATTRS)  # epoch 1 overwritten, 3 and 4 new
    return study.trials[0]


def same(a, b):
    return a == b or (math.isnan(a) and math.isnan(b))


@pytest.mark.parametrize("batched", [True, False])
def test_batched_writes_store_what_optunas_public_api_stores(tmp_path, monkeypatch, batched):
    if not batched:
        monkeypatch.setattr(optuna_internals, "batchable", lambda study: False)
    trial = written(tmp_path, f"s{batched}")
    assert sorted(trial.intermediate_values) == [1, 2, 3, 4]
    assert all(same(trial.intermediate_values[k], v) for k, v in EPOCHS.items())
    assert trial.user_attrs == {"kept": [1, "a"], **ATTRS}  # metric:gap overwritten, kept kept


def test_this_optuna_takes_the_batched_path(tmp_path):
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 'b.db'}"))
    assert optuna_internals.batchable(study)  # else the speed-up silently goes


def test_a_finished_trial_is_not_written(tmp_path):
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 'f.db'}"))
    trial = study.ask()
    study.tell(trial, 0.5)
    with pytest.raises(RuntimeError):
        trials.write_values(study, trial_id_of(trial), {1: 0.5})


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


def suggest_arm(trial):
    return {
        "norm": trial.suggest_categorical("norm", ["none", "batchnorm"]),
        "dropout.rate": trial.suggest_float("dropout.rate", 0.0, 0.9),
        "width": trial.suggest_int("width", 8, 256, log=True),
    }


RUNS = [
    ({"norm": "batchnorm", "dropout.rate": 0.25, "width": 64}, {"arm": "a", "seed": 0}),
    ({"norm": "none", "dropout.rate": 0.5, "width": 8}, {"arm": "b", "seed": [1, "x"]}),
]


def _same_trials(made, expected):
    for a, b in zip(made, expected, strict=True):
        assert (a.number, a.state, a.params, a.distributions) == (b.number, b.state, b.params, b.distributions)
        assert (a.user_attrs, a.system_attrs, a.datetime_start is not None) == (b.user_attrs, b.system_attrs, True)


@pytest.mark.parametrize("batched", [True, False])
def test_trials_started_together_equal_trials_started_one_by_one(tmp_path, monkeypatch, batched):
    if not batched:
        monkeypatch.setattr(optuna_internals, "batchable", lambda study: False)
    ours, theirs = (
        optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / f'{n}.db'}"), sampler=RandomSampler())
        for n in ("ours", "theirs")
    )
    theirs.ask()  # numbers continue after trials already there
    ours.ask()
    made = trials.start_trials(ours, RUNS, suggest_arm)
    for fixed, user_attrs in RUNS:
        trials.start_trial(theirs, fixed, user_attrs, suggest_arm)
    assert [t.number for t in made] == [1, 2]
    assert all(isinstance(t, trials.TrialRef) for t in made) == batched
    _same_trials(ours.trials[1:], theirs.trials[1:])


def test_a_parameter_the_arm_does_not_fix_is_left_to_the_sampler(tmp_path):
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 's.db'}"), sampler=RandomSampler(seed=1))
    made = trials.start_trials(study, [({"norm": "none", "width": 8}, {})], suggest_arm)
    assert isinstance(made[0], optuna.Trial)
    assert 0.0 <= study.trials[0].params["dropout.rate"] <= 0.9


def test_a_distribution_unlike_the_studys_is_refused_as_optuna_refuses_it(tmp_path):
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 's.db'}"))
    trials.start_trials(study, RUNS[:1], suggest_arm)
    with pytest.raises(ValueError):
        trials.start_trials(study, RUNS[:1], lambda t: t.suggest_categorical("width", [64, 128]))
    assert len(study.trials) == 1


@pytest.mark.parametrize("batched", [True, False])
def test_outcomes_stored_together_equal_those_stored_through_tell(tmp_path, monkeypatch, batched):
    if not batched:
        monkeypatch.setattr(optuna_internals, "batchable", lambda study: False)
    ours, theirs = (
        optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / f'{n}.db'}"), sampler=RandomSampler())
        for n in ("ours", "theirs")
    )
    made = trials.start_trials(ours, RUNS, suggest_arm)
    told = [trials.start_trial(theirs, fixed, user_attrs, suggest_arm) for fixed, user_attrs in RUNS]
    failure = {"reason": "diverged", "traceback": "..."}
    trials.store_outcomes(
        ours,
        [
            trials.Outcome(made[0], {"result": {"x": 1}}, optuna.trial.TrialState.COMPLETE, [0.75], EPOCHS),
            trials.failure_outcome(made[1], failure, {1: 0.5}),
        ],
    )
    trials.write_values(theirs, trial_id_of(told[0]), EPOCHS, {"result": {"x": 1}})
    theirs.tell(told[0], 0.75)
    trials.write_values(theirs, trial_id_of(told[1]), {1: 0.5}, {"failure_detail": failure, "failure": "diverged"})
    theirs.tell(told[1], state=optuna.trial.TrialState.FAIL)
    for a, b in zip(ours.trials, theirs.trials, strict=True):
        assert (a.state, a.values, a.user_attrs) == (b.state, b.values, b.user_attrs)
        assert sorted(a.intermediate_values) == sorted(b.intermediate_values)
        assert all(same(a.intermediate_values[k], v) for k, v in b.intermediate_values.items())
        assert a.datetime_complete is not None


def test_a_finished_trial_in_a_batch_is_returned_late_and_loses_none_of_the_others(tmp_path):
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 's.db'}"), sampler=RandomSampler())
    made = trials.start_trials(study, RUNS, suggest_arm)
    study.tell(made[0].number, 0.5)  # closed elsewhere (a worker that took the run over)
    outcomes = [trials.Outcome(t, {"result": 1}, optuna.trial.TrialState.COMPLETE, [0.9]) for t in made]
    assert trials.store_outcomes(study, outcomes) == outcomes[:1]
    first, second = study.trials
    assert first.value == 0.5 and "result" not in first.user_attrs
    assert second.state == optuna.trial.TrialState.COMPLETE and second.user_attrs["result"] == 1
