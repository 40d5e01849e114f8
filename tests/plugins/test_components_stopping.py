"""Stopping rules fire when they should, combine (the first to fire names the
stop), and a diverged run is a stopped run under the divergence rule but a
failed run without it."""

from __future__ import annotations

import copy
import math

import pandas as pd
import pytest
import torch
import torch.nn as nn
from support import make, run_arm

from ablate.components import EpochState
from ablate.train.build import RunFailed

TINY_RUN = """
[study]
name = "stop"
seeds = 1
[data]
name = "digits"
[model]
name = "mlp"
hidden = [32]
[train]
epochs = 6
batch_size = 128
"""
DIVERGING = TINY_RUN.replace("epochs = 6", 'epochs = 5\noptimizer = "sgd"\nlr = 10.0')


def state(epoch, elapsed=0.0, **metrics):
    return EpochState(epoch, 100, nn.Linear(1, 1), metrics, elapsed=elapsed)


def test_max_epochs_stops_at_its_epoch(registry):
    rule = make(registry, "stopping", "max_epochs", epochs=3)
    assert [rule.ablate_epoch_end(state=state(e)) for e in (1, 2, 3)] == [None, None, "max_epochs"]


def test_time_budget_stops_once_the_budget_is_spent(registry):
    rule = make(registry, "stopping", "time_budget", seconds=2.0)
    assert rule.ablate_epoch_end(state=state(1, elapsed=1.9)) is None
    assert rule.ablate_epoch_end(state=state(2, elapsed=2.1)) == "time_budget"


def test_plateau_waits_patience_epochs_without_a_min_delta_improvement(registry):
    rule = make(registry, "stopping", "plateau", patience=2, min_delta=0.1)
    losses = [1.0, 0.8, 0.75, 0.72, 0.5, 0.45, 0.44]
    reasons = [rule.ablate_epoch_end(state=state(e, train_loss=v)) for e, v in enumerate(losses, 1)]
    # 0.75 and 0.72 improve on 0.8 by less than 0.1: two stalled epochs
    assert reasons == [None, None, None, "plateau", None, None, "plateau"]


def test_divergence_flags_nan_inf_and_a_loss_above_the_bound(registry):
    rule = make(registry, "stopping", "divergence", max_loss=10.0)
    assert rule.ablate_epoch_end(state=state(1, train_loss=2.0)) is None
    assert rule.ablate_epoch_end(state=state(2, train_loss=11.0)) == "divergence"
    assert rule.ablate_epoch_end(state=state(3, train_loss=math.nan)) == "divergence"
    assert rule.ablate_epoch_end(state=state(4, train_loss=math.inf)) == "divergence"
    assert rule.ablate_epoch_end(state=state(5, train_loss=1.0, val_loss=math.nan)) == "divergence"
    for other in ("max_epochs", "plateau", "time_budget", "early_stopping"):
        quiet = make(registry, "stopping", other, **({"seconds": 0.1} if other == "time_budget" else {}))
        nan = state(200, elapsed=9.0, train_loss=math.nan, val_loss=math.nan)
        assert [quiet.ablate_epoch_end(state=nan) for _ in range(6)] == [None] * 6, other


@pytest.mark.parametrize("epochs,patience,expected,at", [(4, 1, "plateau", 2), (1, 1, "max_epochs", 1)])
def test_two_rules_on_a_real_run_the_first_to_fire_is_the_stop_reason(
    registry, write_study, epochs, patience, expected, at
):
    """plateau with an impossible min_delta fires at epoch 2; max_epochs at its epoch."""
    result = run_arm(
        write_study(TINY_RUN),
        registry,
        ("stopping", "max_epochs", {"epochs": epochs}),
        ("stopping", "plateau", {"patience": patience, "min_delta": 100.0}),
    )
    assert (result.stop_reason, result.epochs) == (expected, at)


def test_a_nan_loss_fails_the_run_without_a_divergence_rule(registry, write_study):
    with pytest.raises(RunFailed, match="diverged: training loss became nan") as failed:
        run_arm(write_study(DIVERGING), registry)
    nan_epoch = int(str(failed.value).rsplit(" ", 1)[1])
    # a rule due on that very epoch does not claim it: still a failed run
    with pytest.raises(RunFailed, match="diverged"):
        run_arm(write_study(DIVERGING), registry, ("stopping", "max_epochs", {"epochs": nan_epoch}))


def test_the_divergence_rule_stops_a_nan_run_and_measures_its_last_healthy_weights(registry, write_study):
    result = run_arm(write_study(DIVERGING), registry, ("stopping", "divergence", {"max_loss": 1e300}))
    assert result.stop_reason == "divergence"
    last = result.history[-1]
    assert not (math.isfinite(last["train_loss"]) and math.isfinite(last["val_loss"]))
    assert all(math.isfinite(h["train_loss"] + h["val_loss"]) for h in result.history[:-1])
    assert not math.isnan(result.metrics["train_loss"])  # measured on the last healthy weights
    kept = run_arm(write_study(DIVERGING), registry, ("stopping", "divergence", {"max_loss": 1e300, "restore": False}))
    assert math.isnan(kept.metrics["train_loss"])  # the control: the NaN weights themselves
    bounded = run_arm(write_study(DIVERGING), registry, ("stopping", "divergence", {}))
    assert (bounded.stop_reason, bounded.epochs) == ("divergence", 1)  # loss ~1e7 > 1e3 at once
    assert bounded.metrics["train_loss"] < 3.0  # the initial weights, restored


@pytest.mark.slow
def test_diverged_runs_in_a_study_are_failed_without_the_rule_and_stopped_with_it(write_study, run_cli, tmp_path):
    text = (
        DIVERGING.replace("seeds = 1", "seeds = 1")
        + """
[factors.guard]
kind = "stopping"
levels = ["none", "divergence"]
divergence = { max_loss = 1e300 }
"""
    )
    code, _, err = run_cli("run", write_study(text), "--out", tmp_path / "out")
    assert code == 3, err  # finished, with a failed run
    table = pd.read_csv(tmp_path / "out" / "results.csv").set_index("guard")
    assert table.loc["none", "status"] != table.loc["divergence", "status"]
    assert "diverged" in str(table.loc["none", "failure"])
    assert table.loc["divergence", "stop_reason"] == "divergence"
    assert table.loc["divergence", "test_accuracy"] >= 0


def test_early_stopping_waits_patience_epochs_and_restores_the_best_weights(registry):
    rule = make(registry, "stopping", "early_stopping", monitor="val_loss", patience=2)
    model = nn.Linear(2, 2)
    losses = [1.0, 0.5, 0.7, 0.6]
    best = None
    reasons = []
    for epoch, loss in enumerate(losses, 1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        if loss == 0.5:
            best = copy.deepcopy(model.state_dict())
        reasons.append(rule.ablate_epoch_end(state=EpochState(epoch, 10, model, {"val_loss": loss})))
    assert reasons == [None, None, None, "early_stopping"]
    rule.ablate_train_end(model=model, stop_reason="early_stopping")
    assert torch.equal(model.weight, best["weight"])


def test_early_stopping_on_accuracy_treats_larger_as_better(registry):
    rule = make(registry, "stopping", "early_stopping", monitor="val_accuracy", patience=1, restore_best=False)
    model = nn.Linear(1, 1)
    assert rule.ablate_epoch_end(state=EpochState(1, 9, model, {"val_accuracy": 0.5})) is None
    assert rule.ablate_epoch_end(state=EpochState(2, 9, model, {"val_accuracy": 0.6})) is None
    assert rule.ablate_epoch_end(state=EpochState(3, 9, model, {"val_accuracy": 0.55})) == "early_stopping"
