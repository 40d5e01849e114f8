"""The report's bulk reads of stored trials (Optuna's tables through its ORM, and an SQLite
file read directly) give Optuna's own answer (study.get_trials())."""

from __future__ import annotations

import math
import subprocess
import sys

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState
from support import DROPOUT_FACTOR, one_epoch_study

from ablate.cli.report_commands import open_stored_study
from ablate.engine.store import attrs, optuna_schema, trials
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


def bulk_read(how: str, study: optuna.Study, path, **kwargs):  # type: ignore[no-untyped-def]
    if how == "orm":
        assert trial_bulk.readable(study)
        return trial_bulk.read_trials(study, **kwargs)
    names = optuna_schema.study_names(path)
    assert names == ["other", "mixed"]
    return optuna_schema.read_trials(optuna_schema.open_study(path, "mixed"), **kwargs)


@pytest.mark.parametrize("how", ["orm", "sqlite"])
def test_the_bulk_read_equals_get_trials_on_complete_failed_pruned_and_running_trials(tmp_path, how):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{tmp_path / 'mixed.db'}"
    mixed_study(url, "other")  # a second study in the same storage: none of its trials may leak in
    study = mixed_study(url, "mixed")
    expected = study.get_trials(deepcopy=False)
    got = bulk_read(how, study, tmp_path / "mixed.db", epochs=True)
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
    only = bulk_read(how, study, tmp_path / "mixed.db", attr_keys=[attrs.RUN_KEY, attrs.RESULT])
    for ours, theirs in zip(only, expected):
        assert ours.user_attrs == {k: v for k, v in theirs.user_attrs.items() if k in (attrs.RUN_KEY, attrs.RESULT)}
        assert ours.intermediate_values == {}


def test_infinite_objective_values_read_directly_as_optuna_reads_them(tmp_path):
    url = f"sqlite:///{tmp_path / 'inf.db'}"
    study = optuna.create_study(storage=url, study_name="inf", directions=["maximize", "minimize"])
    for values in ([math.inf, -math.inf], [-math.inf, 0.5], [1.25, math.inf]):
        study.tell(study.ask(), values)
    direct = optuna_schema.read_trials(optuna_schema.open_study(tmp_path / "inf.db", "inf"))
    assert [t.values for t in direct] == [t.values for t in study.get_trials()]
    assert [t.value for t in direct] == [None, None, None]  # two objectives: no single value, as Optuna says


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


def test_a_real_studys_table_is_the_same_read_in_bulk_or_through_optuna(trained, tmp_path, monkeypatch):
    assert isinstance(trained, optuna_schema.SqliteStudy)  # SQLite is read directly
    record, plan = stored_record(trained)
    bulk, bulk_histories = collect(trained, plan, record.factors)
    assert len(bulk) == 4 and (bulk["status"] == "complete").all()
    through_optuna = optuna.load_study(study_name=trained.study_name, storage=f"sqlite:///{trained.path}")
    assert stored_record(through_optuna) == (record, plan)
    orm, orm_histories = collect(through_optuna, plan, record.factors)
    monkeypatch.setattr(trials, "readable", lambda study: False)
    public, public_histories = collect(through_optuna, plan, record.factors)
    pd.testing.assert_frame_equal(bulk, public)
    pd.testing.assert_frame_equal(orm, public)
    assert bulk_histories == public_histories == orm_histories
    assert failure_details(through_optuna, plan) == {}


def test_a_file_whose_tables_are_not_the_ones_read_directly_opens_through_optuna(trained, monkeypatch):
    monkeypatch.setattr(optuna_schema, "TABLES", {**optuna_schema.TABLES, "trials": ("trial_id", "renamed")})
    study = open_stored_study(f"sqlite:///{trained.path}", None)
    assert isinstance(study, optuna.Study) and study.study_name == trained.study_name


def test_reporting_an_sqlite_study_loads_no_sqlalchemy(trained, tmp_path):
    """The direct read is what keeps SQLAlchemy's import (a tenth of a second) out of a report."""
    code = (
        "import sys\nfrom ablate.cli import main\n"
        f"code = main(['report', {str(trained.path.parent)!r}, '--out', {str(tmp_path / 'again')!r}])\n"
        "print(code, sorted(m for m in ('sqlalchemy', 'alembic') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.splitlines()[-1] == "0 []", done.stderr
    assert (tmp_path / "again" / "results.csv").read_bytes() == (trained.path.parent / "results.csv").read_bytes()


def test_a_direct_read_loads_the_studys_record_and_plan_once_per_open(trained, monkeypatch):
    """The plan is megabytes at 10,000 runs: opening, the record and the tables ask for it three times."""
    calls = []
    real = optuna_schema._study_attrs
    monkeypatch.setattr(optuna_schema, "_study_attrs", lambda study: calls.append(study) or real(study))
    study = open_stored_study(f"sqlite:///{trained.path}", None)
    assert stored_record(study) == stored_record(study) == stored_record(trained)
    assert len(calls) == 1
