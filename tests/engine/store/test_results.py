"""Results tables: one row per run, safe in a spreadsheet, full precision."""

from __future__ import annotations

import csv

import pandas as pd
import pytest

from ablate.engine.store.results import spreadsheet_safe


def test_text_that_a_spreadsheet_would_evaluate_is_quoted():
    assert spreadsheet_safe("=1+1") == "'=1+1"
    assert [spreadsheet_safe(v) for v in ("+A1", "-2", "@SUM(A1)", "batchnorm")] == [
        "'+A1",
        "'-2",
        "'@SUM(A1)",
        "batchnorm",
    ]
    assert spreadsheet_safe(-2.5) == -2.5  # numbers stay numbers


@pytest.mark.slow
def test_a_level_named_like_a_formula_reaches_the_csv_as_text(write_study, run_cli, tmp_path):
    text = """
        [study]
        seeds = 1
        [data]
        name = "digits"
        [model]
        name = "mlp"
        hidden = [8]
        [train]
        epochs = 1
        [factors.act]
        setting = "model.activation"
        levels = ["relu", "tanh"]
        [factors."=1+1"]
        kind = "regularizer"
        levels = ["none", "dropout"]
        """
    code, _, err = run_cli("run", write_study(text), "--out", tmp_path / "out")
    assert code == 0, err
    with open(tmp_path / "out" / "results.csv", newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    assert "'=1+1" in header and "=1+1" not in header
    cells = [cell for row in rows for cell in row]
    assert not any(cell.startswith(("=", "+", "@")) for cell in cells)


def test_results_keep_full_precision(tmp_path):
    from ablate.engine.store.record import StudyRecord
    from ablate.engine.store.results import write_tables

    table = pd.DataFrame({"arm": ["a", "b"], "seed": [0, 0], "lr": [0.002, 0.0020000002]})
    write_tables(tmp_path, table, [], StudyRecord(name="x"))
    back = pd.read_csv(tmp_path / "results.csv")
    assert list(back["lr"]) == [0.002, 0.0020000002]


@pytest.mark.slow
def test_the_last_point_of_each_train_curve_is_the_leaderboards_train_accuracy(write_study, run_cli, tmp_path):
    """Dropout 0.5, no early stopping or augmentation: the curves plot eval-mode
    accuracy on the full training split, the leaderboard's own quantity."""
    import json

    text = """
        [study]
        seeds = 2
        [data]
        name = "digits"
        [model]
        name = "mlp"
        hidden = [32]
        [train]
        epochs = 5
        [factors.dropout]
        kind = "regularizer"
        levels = ["none", "dropout"]
        dropout = { rate = 0.5 }
        """
    code, _, err = run_cli("run", write_study(text), "--out", tmp_path / "out")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "out" / "results.csv").set_index(["arm", "seed"])
    runs = json.loads((tmp_path / "out" / "results.json").read_text())["runs"]
    assert len(runs) == 4
    for run in runs:
        last = run["history"][-1]
        assert last["train_accuracy"] == table.loc[(run["arm"], run["seed"]), "train_accuracy"]
        if run["arm"] == "dropout":  # what the optimiser saw with dropout on is lower, and kept apart
            assert last["running_accuracy"] < last["train_accuracy"]
