"""`ablate run` from study file to report, resume, and determinism."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from support import TINY

REQUIRED = [
    "arm",
    "seed",
    "status",
    "norm",
    "dropout",
    "train_accuracy",
    "val_accuracy",
    "test_accuracy",
    "gap",
    "train_loss",
    "val_loss",
    "test_loss",
    "epochs",
    "stop_reason",
    "seconds",
]
METRICS = [
    "train_accuracy",
    "val_accuracy",
    "test_accuracy",
    "gap",
    "train_loss",
    "val_loss",
    "test_loss",
    "epochs",
    "stop_reason",
]


@pytest.mark.slow
def test_run_writes_report_tables_and_figures(write_study, run_cli, tmp_path):
    out = tmp_path / "out"
    code, stdout, stderr = run_cli("run", write_study(), "--out", out)
    assert code == 0, stderr
    assert "[8/8]" in stdout and "eta" in stdout  # progress while training
    for name in ("index.html", "results.csv", "results.json"):
        assert (out / name).is_file()
    assert len(list(out.glob("*.png"))) >= 2
    table = pd.read_csv(out / "results.csv")
    assert set(REQUIRED) <= set(table.columns)
    assert len(table) == 8 and not table.duplicated(["arm", "seed"]).any()
    assert set(table["arm"]) == {"baseline", "batchnorm", "dropout", "batchnorm + dropout"}
    assert (table["status"] == "complete").all()
    for col in ("train_accuracy", "val_accuracy", "test_accuracy"):
        assert table[col].between(0, 1).all()
    assert (table["gap"] - (table["train_accuracy"] - table["test_accuracy"])).abs().max() < 1e-5
    assert (table["epochs"] == 4).all() and (table["stop_reason"] == "max_epochs").all()
    html = (out / "index.html").read_text()
    assert "Does dropout help a tiny MLP on digits?" in html


@pytest.mark.slow
def test_rerun_trains_nothing_and_adds_no_rows(write_study, run_cli, tmp_path):
    study, out = write_study(), tmp_path / "out"
    assert run_cli("run", study, "--out", out)[0] == 0
    first = pd.read_csv(out / "results.csv")
    code, stdout, _ = run_cli("run", study, "--out", out)
    assert code == 0
    assert "8 of 8 runs already stored; 0 to train" in stdout
    assert "seed=0:" not in stdout  # no run line: nothing trained
    again = pd.read_csv(out / "results.csv")
    assert len(again) == 8
    pd.testing.assert_frame_equal(first[METRICS], again[METRICS])


@pytest.mark.slow
def test_changing_training_settings_makes_new_runs(write_study, run_cli, tmp_path):
    out = tmp_path / "out"
    assert run_cli("run", write_study(), "--out", out)[0] == 0
    code, stdout, _ = run_cli("run", write_study(TINY.replace("epochs = 4", "epochs = 3")), "--out", out)
    assert code == 0 and "[8/8]" in stdout
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 8 and (table["epochs"] == 3).all()


@pytest.mark.slow
def test_same_seeds_give_identical_metrics(write_study, run_cli, tmp_path):
    study = write_study(
        TINY + '\n[factors.stop]\nkind = "stopping"\nlevels = ["early_stopping"]\nearly_stopping = { patience = 1 }\n'
    )
    for name in ("a", "b"):
        assert run_cli("run", study, "--out", tmp_path / name)[0] == 0
    a = pd.read_csv(tmp_path / "a" / "results.csv")
    b = pd.read_csv(tmp_path / "b" / "results.csv")
    pd.testing.assert_frame_equal(a[["arm", "seed", *METRICS]], b[["arm", "seed", *METRICS]])


@pytest.mark.slow
def test_killed_run_resumes_with_only_the_missing_runs(write_study, tmp_path):
    study = write_study(TINY.replace("epochs = 4", "epochs = 12").replace("seeds = 2", "seeds = 3"))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "ablate", "run", str(study), "--out", str(out)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    finished = 0
    deadline = time.time() + 120
    for line in proc.stdout:
        if "seed=" in line and "eta" in line:
            finished += 1
        if finished == 3 or time.time() > deadline:
            break
    proc.send_signal(signal.SIGKILL)  # no chance to clean up: the worst case
    proc.wait()
    assert finished == 3
    assert not (out / "results.csv").exists()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    stored = int(done.stdout.split(" of 12 runs already stored")[0].rsplit("\n", 1)[-1])
    assert stored >= 3
    trained = sum(1 for line in done.stdout.splitlines() if "seed=" in line and "eta" in line)
    assert trained == 12 - stored
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 12 and not table.duplicated(["arm", "seed"]).any()
    assert (table["status"] == "complete").all()


@pytest.mark.slow
def test_every_epoch_reaches_optuna_as_an_intermediate_value(write_study, run_cli, tmp_path):
    """Epoch values are written in batches, not one commit each: none may be lost."""
    import optuna

    from ablate.engine.store import attrs

    out = tmp_path / "out"
    assert run_cli("run", write_study(), "--out", out, "--jobs", "2")[0] == 0
    trials = optuna.load_study(study_name=None, storage=f"sqlite:///{out / 'study.db'}").trials
    assert len(trials) == 8
    for trial in trials:
        history = trial.user_attrs[attrs.RESULT]["history"]
        assert trial.intermediate_values == {int(h["epoch"]): h["val_accuracy"] for h in history}
        assert sorted(trial.intermediate_values) == [1, 2, 3, 4]
