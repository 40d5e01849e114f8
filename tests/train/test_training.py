"""The training loop: batches, the short last batch, what each epoch records."""

from __future__ import annotations

import pandas as pd
import pytest

from ablate.train.training import batch_bounds


def test_a_last_batch_of_one_sample_joins_the_one_before():
    assert batch_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert batch_bounds(9, 4) == [(0, 4), (4, 9)]
    assert batch_bounds(1, 4) == [(0, 1)]
    assert all(end - start > 1 for start, end in batch_bounds(1077, 538))


@pytest.mark.slow
def test_batch_norm_arms_complete_when_the_split_leaves_a_single_sample(write_study, run_cli, tmp_path):
    """digits' training split has 1,077 samples: batch_size 538 leaves one over."""
    text = """
        [study]
        seeds = 1
        [data]
        name = "digits"
        [model]
        name = "mlp"
        hidden = [16]
        [train]
        epochs = 2
        batch_size = 538
        [factors.norm]
        kind = "norm"
        levels = ["none", "batchnorm"]
        """
    code, _, err = run_cli("run", write_study(text), "--out", tmp_path / "out")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "out" / "results.csv")
    assert list(table["status"]) == ["complete", "complete"]


def test_each_epoch_records_eval_mode_and_running_metrics(write_study, registry, tiny):
    from ablate.engine.planned import study_arms
    from ablate.study.config import load_study
    from ablate.study.design import run_spec
    from ablate.train.training import train_run

    config = load_study(write_study(tiny), registry)
    arm = next(a for a in study_arms(config, registry) if a.name == "dropout")
    result = train_run(run_spec(config, arm, 0), registry)
    last = result.history[-1]
    assert set(last) == {
        "epoch",
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "running_loss",
        "running_accuracy",
    }
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]
    # no early stopping: the last epoch's eval-mode train accuracy is the final one
    assert last["train_accuracy"] == result.metrics["train_accuracy"]
    assert last["val_accuracy"] == result.metrics["val_accuracy"]
    assert result.sizes == {"train": 1077, "val": 360, "test": 360}
