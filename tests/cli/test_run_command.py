"""`ablate run` as a user meets it: what a rerun trains, and problems of the
environment reported before any training, with nothing stored lost."""

from __future__ import annotations

import sqlite3
import textwrap

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits

CSV_STUDY = """
[study]
name = "csvstudy"
seeds = 2
[data]
name = "csv"
path = "{path}"
[model]
name = "mlp"
hidden = [16]
[train]
epochs = 2
[factors.dropout]
kind = "regularizer"
levels = ["none", "dropout"]
"""


def trainings(out) -> int:
    """How many trainings the study's storage holds (one trial each)."""
    with sqlite3.connect(out / "study.db") as db:
        return db.execute("SELECT COUNT(*) FROM trials").fetchone()[0]


@pytest.fixture
def csv_study(tmp_path, write_study):
    x, y = load_digits(return_X_y=True)
    data = tmp_path / "digits.csv"
    np.savetxt(data, np.column_stack([y, x])[:600], delimiter=",", fmt="%g")
    return write_study(CSV_STUDY.format(path=data)), data


@pytest.mark.slow
def test_a_rerun_with_other_threads_or_jobs_trains_nothing_but_changed_data_retrains(csv_study, run_cli, tmp_path):
    study, data = csv_study
    out = tmp_path / "out"
    assert run_cli("run", study, "--out", out)[0] == 0
    assert trainings(out) == 4
    study.write_text(study.read_text().replace("epochs = 2", "epochs = 2\nthreads = 2"))
    code, stdout, _ = run_cli("run", study, "--out", out, "--jobs", "2")
    assert code == 0 and "4 of 4 runs already stored" in stdout and trainings(out) == 4
    lines = data.read_text().splitlines()
    data.write_text("\n".join(lines[:-1]) + "\n")  # one sample fewer: new data, new runs
    assert run_cli("run", study, "--out", out)[0] == 0
    assert trainings(out) == 8


BOOM = """
from ablate import hookimpl


class Boom:
    @hookimpl
    def ablate_loss_penalty(self, model):
        return {}["missing"]  # a plugin author's bug


@hookimpl
def ablate_register_regularizers(registry):
    registry.add("boom", Boom, help="raises KeyError at the first step")
"""


@pytest.fixture
def failing_study(write_study, tmp_path, tiny):
    (tmp_path / "boom.py").write_text(BOOM)
    text = tiny.replace('question = "Does dropout help a tiny MLP on digits?"', 'plugins = ["boom.py"]')
    return write_study(text.replace('levels = ["none", "dropout"]', 'levels = ["none", "dropout", "boom"]'))


@pytest.mark.slow
@pytest.mark.parametrize("jobs", ["1", "2"])  # 2: workers start before the study loads, yet load its plugin file
def test_a_component_raising_keyerror_fails_its_arm_only_and_the_report_shows_why(
    failing_study, run_cli, tmp_path, jobs
):
    out = tmp_path / "out"
    code, _, err = run_cli("run", failing_study, "--out", out, "--jobs", jobs)
    assert code == 3, err  # finished, with failed runs
    table = pd.read_csv(out / "results.csv")
    failed = table[table["status"] == "failed"]
    assert set(failed["dropout"]) == {"boom"} and len(failed) == 4  # 2 norms x 2 seeds
    assert (table[table["dropout"] != "boom"]["status"] == "complete").all()
    assert failed["failure"].str.contains("regularizer:boom.py:boom: KeyError", regex=False).all()
    assert "KeyError" in (out / "index.html").read_text()


@pytest.mark.slow
def test_retry_failed_trains_only_the_failed_runs_again(failing_study, run_cli, tmp_path):
    out = tmp_path / "out"
    assert run_cli("run", failing_study, "--out", out)[0] == 3
    before = trainings(out)
    code, stdout, _ = run_cli("run", failing_study, "--out", out)
    assert "12 of 12 runs already stored, 4 of them failed; --retry-failed trains those again" in stdout
    assert trainings(out) == before
    code, stdout, _ = run_cli("run", failing_study, "--out", out, "--retry-failed")
    assert code == 3 and trainings(out) == before + 4


def test_a_bad_study_with_jobs_is_the_studys_user_error(write_study, run_cli, tmp_path, tiny):
    """Workers start before the study is validated; the error must still be the study's."""
    study = write_study(tiny.replace('name = "digits"', 'name = "digitz"'))
    code, _, err = run_cli("run", study, "--out", tmp_path / "out", "--jobs", "2")
    assert code == 2 and "data.name" in err and "did you mean 'digits'?" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "study.db").exists()


@pytest.mark.slow
def test_cuda_without_a_gpu_is_a_user_error_before_training(write_study, run_cli, tmp_path, tiny):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code, _, err = run_cli(
        "run", write_study(tiny.replace("epochs = 4", 'epochs = 4\ndevice = "cuda"')), "--out", tmp_path / "out"
    )
    assert code == 2 and "train.device" in err and "no usable CUDA GPU" in err
    assert not (tmp_path / "out" / "study.db").exists()


@pytest.mark.slow
def test_an_unreachable_database_is_a_user_error(write_study, run_cli, tiny):
    code, _, err = run_cli("run", write_study(tiny), "--storage", "postgresql://nobody@127.0.0.1:1/none")
    assert code == 2 and "cannot open storage" in err and "Traceback" not in err


@pytest.mark.slow
def test_an_output_folder_that_cannot_be_written_is_a_user_error(write_study, run_cli, tmp_path, tiny):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, _, err = run_cli("run", write_study(tiny), "--out", blocker / "out")
    assert code == 2 and "--out" in err and "cannot write the output folder" in err


@pytest.mark.slow
def test_a_study_db_that_is_not_a_database_is_named_and_left_alone(write_study, run_cli, tmp_path, tiny):
    out = tmp_path / "out"
    out.mkdir()
    (out / "study.db").write_text("these are my notes, not a database\n")
    code, _, err = run_cli("run", write_study(tiny), "--out", out)
    assert code == 2 and "is not an SQLite database" in err and "--storage" not in err.split("expected")[1]
    assert (out / "study.db").read_text() == "these are my notes, not a database\n"


@pytest.mark.slow
def test_a_report_that_cannot_be_written_is_a_user_error_and_keeps_the_runs(write_study, run_cli, tmp_path, tiny):
    out = tmp_path / "out"
    (out / "results.csv").mkdir(parents=True)  # results.csv cannot be written
    code, _, err = run_cli("run", write_study(tiny), "--out", out)
    assert code == 2 and "results.csv" in err and "Traceback" not in err
    assert trainings(out) == 8
    (out / "results.csv").rmdir()
    code, _, _ = run_cli("report", out)
    assert code == 0 and len(pd.read_csv(out / "results.csv")) == 8


@pytest.mark.slow
def test_jobs_must_be_a_count_or_auto(write_study, run_cli, tiny):
    with pytest.raises(SystemExit) as exit_:
        run_cli("run", write_study(tiny), "--jobs", "0")
    assert exit_.value.code == 2


STUDY_TEXT = textwrap.dedent(CSV_STUDY)


@pytest.mark.slow
def test_a_changed_plugin_version_is_named_and_retrain_changed_trains_those_runs(write_study, run_cli, tmp_path, tiny):
    import json

    study, out = write_study(tiny), tmp_path / "out"
    assert run_cli("run", study, "--out", out)[0] == 0
    with sqlite3.connect(out / "study.db") as db:  # one run was trained with an older batchnorm
        trial_id, value = db.execute(
            "SELECT trial_id, value_json FROM trial_user_attributes WHERE key = 'result' "
            "AND value_json LIKE '%batchnorm%' LIMIT 1"
        ).fetchone()
        result = json.loads(value)
        result["versions"]["plugin:norm:batchnorm"] = "ablate 0.0.1"
        db.execute(
            "UPDATE trial_user_attributes SET value_json = ? WHERE trial_id = ? AND key = 'result'",
            (json.dumps(result), trial_id),
        )
    code, stdout, _ = run_cli("run", study, "--out", out)
    assert "1 stored run(s) were trained with other plugin versions (norm:batchnorm: ablate 0.0.1 -> ablate" in stdout
    assert "--retrain-changed trains them again" in stdout and trainings(out) == 8
    code, stdout, _ = run_cli("run", study, "--out", out, "--retrain-changed")
    assert code == 0 and trainings(out) == 9
    code, stdout, _ = run_cli("run", study, "--out", out)
    assert "other plugin versions" not in stdout  # the newest training counts


@pytest.mark.slow
def test_plan_states_what_the_stored_seeds_can_detect_once_runs_exist(
    write_study, run_cli, tmp_path, tiny, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    study = write_study(tiny)
    code, stdout, _ = run_cli("plan", study, "--no-calibrate")
    assert code == 0 and "Power" not in stdout  # nothing stored yet
    assert run_cli("run", study)[0] == 0  # into reports/tiny, the default
    code, stdout, _ = run_cli("plan", study, "--no-calibrate")
    assert code == 0 and "from the 8 runs stored in reports/tiny" in stdout
    assert "smallest difference" in stdout and "seeds at this spread" in stdout


KILLER = """
import os

from ablate import hookimpl


class Killer:
    @hookimpl
    def ablate_after_step(self, model):
        os._exit(9)  # the worker process dies, as one killed for memory does


@hookimpl
def ablate_register_regularizers(registry):
    registry.add("killer", Killer, help="kills its worker process at the first step")
"""


def test_a_run_whose_worker_dies_every_time_fails_instead_of_looping(write_study, run_cli, tmp_path, tiny):
    """A dead worker's runs are trained again, but not for ever: after a third death
    the run fails with the reason, and the study goes on (exit 3)."""
    (tmp_path / "killer.py").write_text(KILLER)
    text = tiny.replace('question = "Does dropout help a tiny MLP on digits?"', 'plugins = ["killer.py"]')
    text = text.replace('levels = ["none", "dropout"]', 'levels = ["none", "killer"]')
    text = text.replace("epochs = 4", "epochs = 1").replace("dropout = { rate = 0.2 }\n", "")
    out = tmp_path / "out"
    code, printed, err = run_cli("run", write_study(text), "--out", out, "--jobs", "2")
    assert code == 3, err
    table = pd.read_csv(out / "results.csv")
    failed = table[table["status"] == "failed"]
    assert set(failed["dropout"]) == {"killer"} and len(failed) == 4  # 2 norms x 2 seeds
    assert failed["failure"].str.contains("worker process died 3 times").all()
    assert (table[table["dropout"] == "none"]["status"] == "complete").all()
    assert "trained again" in printed
