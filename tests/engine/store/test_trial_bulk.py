"""The report's bulk read of stored trials gives Optuna's own answer (study.get_trials())."""

from __future__ import annotations

import math

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState
from support import DROPOUT_FACTOR, one_epoch_study

from ablate.cli.report_commands import open_stored_study
from ablate.engine.store import attrs, trials
from ablate.engine.store import optuna_internals as trial_bulk
from ablate.engine.store.results import collect, failure_details
from ablate.report.outputs import stored_record


def mixed_study(url: str, name: str) -> optuna.Study:
    """Complete, failed, pruned and running trials, with epoch values (NaN and inf among them)
    and user attributes, through Optuna's public API."""
    study = optuna.create_study(storage=url, study_name=name)
    for i, state in enumerate(["complete", "fail", "pruned", "running", "complete", "fail"]):
        trial = study.ask()
        trial.set_user_attr(attrs.RUN_KEY, f"run{i % 4}")
        trial.set_user_attr("spec", {"arm": f"a{i}", "nested": [1, 2.5, None]})
        for step, value in enumerate([0.5, 0.25 * i, math.nan, math.inf][: 1 + i % 4]):
            trial.report(value, step)
        if state == "complete":
            trial.set_user_attr(attrs.RESULT, {"metrics": {"val_accuracy": 0.1 * i}, "history": [{"epoch": 1}]})
            study.tell(trial, 0.1 * i)
        elif state == "fail":
            trial.set_user_attr(attrs.FAILURE, "RuntimeError: boom")
            study.tell(trial, state=TrialState.FAIL)
        elif state == "pruned":
            trial.set_user_attr(attrs.PRUNED, {"history": [], "epochs": 1})
            study.tell(trial, state=TrialState.PRUNED)
    return study


def same(a: object, b: object) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def test_the_bulk_read_equals_get_trials_on_complete_failed_pruned_and_running_trials(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{tmp_path / 'mixed.db'}"
    mixed_study(url, "other")  # a second study in the same storage: none of its trials may leak in
    study = mixed_study(url, "mixed")
    assert trial_bulk.readable(study)
    expected = study.get_trials(deepcopy=False)
    got = trial_bulk.read_trials(study, epochs=True)
    assert {t.state for t in expected} == {TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED, TrialState.RUNNING}
    assert [t.number for t in got] == [t.number for t in expected]
    for ours, theirs in zip(got, expected):
        assert trial_bulk.trial_id_of(ours) == trial_bulk.trial_id_of(theirs)
        assert ours.state == theirs.state
        assert ours.values == theirs.values
        assert ours.value == (theirs.value if theirs.values else None)
        assert ours.user_attrs == theirs.user_attrs
        assert ours.intermediate_values.keys() == theirs.intermediate_values.keys()
        assert all(same(v, theirs.intermediate_values[k]) for k, v in ours.intermediate_values.items())
    only = trial_bulk.read_trials(study, attr_keys=[attrs.RUN_KEY, attrs.RESULT])
    for ours, theirs in zip(only, expected):
        assert ours.user_attrs == {k: v for k, v in theirs.user_attrs.items() if k in (attrs.RUN_KEY, attrs.RESULT)}
        assert ours.intermediate_values == {}


def test_runs_grouped_from_the_bulk_read_match_the_public_apis(tmp_path, monkeypatch):
    study = mixed_study(f"sqlite:///{tmp_path / 'g.db'}", "g")
    bulk = trials.run_outcomes(study)
    public = trials.run_states(study)
    assert bulk.keys() == public.keys()
    for key in public:
        assert [trials.outcome(t) for t in bulk[key]] == [trials.outcome(t) for t in public[key]]
        assert [t.number for t in bulk[key]] == [t.number for t in public[key]]
    monkeypatch.setattr(trials, "readable", lambda study: False)
    assert {k: [t.number for t in v] for k, v in trials.run_outcomes(study).items()} == {
        k: [t.number for t in v] for k, v in public.items()
    }


@pytest.fixture
def trained(write_study, run_cli, tmp_path):
    """A real one-epoch study with two arms over two seeds, stored in SQLite."""
    path = write_study(one_epoch_study(seeds=2) + DROPOUT_FACTOR)
    code, _, err = run_cli("run", path, "--out", tmp_path / "out")
    assert code == 0, err
    return open_stored_study(f"sqlite:///{tmp_path / 'out' / 'study.db'}", None)


def test_a_real_studys_table_is_the_same_read_in_bulk_or_through_optuna(trained, monkeypatch):
    record, plan = stored_record(trained)
    bulk, bulk_histories = collect(trained, plan, record.factors)
    assert len(bulk) == 4 and (bulk["status"] == "complete").all()
    monkeypatch.setattr(trials, "readable", lambda study: False)
    public, public_histories = collect(trained, plan, record.factors)
    pd.testing.assert_frame_equal(bulk, public)
    assert bulk_histories == public_histories
    assert failure_details(trained, plan) == {}
