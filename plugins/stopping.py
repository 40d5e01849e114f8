"""Stopping rules, consulted at every epoch end. Several may be active; every
rule is called each epoch and the first reason in call order becomes the run's
``stop_reason``.

A diverged run: without a ``divergence`` rule, a non-finite training loss fails
the run (recorded as failed, with the reason). With the rule active, divergence
(a non-finite training or validation loss, or the training loss above
``max_loss``) is a *stopped* run with
stop_reason "divergence": the rule restores the weights of the last healthy
epoch (the initial weights if the first epoch diverged), so the run is measured
on finite weights and stays in the tables, marked by its stop reason. The
other rules never fire on an epoch whose training loss is not finite, so they
cannot turn a diverged run into a stopped one by accident.
"""

from __future__ import annotations

import copy
import math

from ablate import DataInfo, Param, UserError, hookimpl


def diverged(state) -> bool:
    """This epoch's training loss is NaN or infinite: only "divergence" may claim it."""
    return not math.isfinite(state.metrics.get("running_loss", state.metrics.get("train_loss", 0.0)))


class EarlyStopping:
    """Stop when the monitored validation metric has not improved by more than
    ``min_delta`` for ``patience`` epochs; optionally restore the best weights."""

    def __init__(self, monitor: str, patience: int, min_delta: float, restore_best: bool):
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.restore_best = restore_best
        self.sign = 1.0 if monitor.endswith("accuracy") else -1.0  # larger is better
        self.best: float | None = None
        self.best_state: dict | None = None
        self.best_epoch = 0
        self.waited = 0

    @hookimpl
    def ablate_check_data(self, info: DataInfo) -> None:
        if info.val_size == 0:
            raise UserError(
                f"early stopping watches {self.monitor} on the validation split, and this study has none",
                key="data.val_fraction",
                expected="val_fraction above 0, or a stopping rule that needs no "
                "validation data (plateau, max_epochs, time_budget)",
            )

    @hookimpl
    def ablate_epoch_end(self, state):
        if diverged(state):
            return None
        value = self.sign * state.metrics[self.monitor]
        if self.best is None or value > self.best + self.min_delta:
            self.best, self.best_epoch, self.waited = value, state.epoch, 0
            if self.restore_best:
                self.best_state = copy.deepcopy(state.model.state_dict())
            return None
        self.waited += 1
        return "early_stopping" if self.waited >= self.patience else None

    @hookimpl
    def ablate_train_end(self, model, stop_reason):
        if self.restore_best and self.best_state is not None:
            model.load_state_dict(self.best_state)


class MaxEpochs:
    """Stop at epoch ``epochs`` (below the study's [train] epochs, per arm)."""

    def __init__(self, epochs: int):
        self.epochs = epochs

    @hookimpl
    def ablate_epoch_end(self, state):
        return "max_epochs" if state.epoch >= self.epochs and not diverged(state) else None


class Divergence:
    """Stop when the training loss is NaN/inf or above ``max_loss``, or the
    validation loss is NaN/inf; restore the last healthy epoch's weights (see the
    module docstring)."""

    def __init__(self, max_loss: float, restore: bool):
        self.max_loss, self.restore = max_loss, restore
        self.good_state: dict | None = None

    @hookimpl
    def ablate_optimizer_options(self, model):
        if self.restore:  # called once before training: the fallback if epoch 1 diverges
            self.good_state = copy.deepcopy(model.state_dict())
        return None

    @hookimpl
    def ablate_epoch_end(self, state):
        loss = state.metrics.get("running_loss", state.metrics["train_loss"])
        # the validation loss is measured on the weights the epoch ends with: when
        # it is not finite, those weights are broken even if the running loss was not
        # (without a validation split its metrics are all NaN, the accuracy included)
        has_val = math.isfinite(state.metrics.get("val_accuracy", 0.0))
        if (
            not math.isfinite(loss)
            or loss > self.max_loss
            or (has_val and not math.isfinite(state.metrics.get("val_loss", 0.0)))
        ):
            return "divergence"
        if self.restore:
            self.good_state = copy.deepcopy(state.model.state_dict())
        return None

    @hookimpl
    def ablate_train_end(self, model, stop_reason):
        if stop_reason == "divergence" and self.restore and self.good_state is not None:
            model.load_state_dict(self.good_state)


class TimeBudget:
    """Stop at the first epoch end after ``seconds`` of wall time (data loading
    and model building included)."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    @hookimpl
    def ablate_epoch_end(self, state):
        return "time_budget" if state.elapsed >= self.seconds and not diverged(state) else None


class Plateau:
    """Stop when the running training loss has not improved by more than ``min_delta`` for
    ``patience`` epochs (optimisation has stalled; no validation data used)."""

    def __init__(self, patience: int, min_delta: float):
        self.patience, self.min_delta = patience, min_delta
        self.best: float | None = None
        self.waited = 0

    @hookimpl
    def ablate_epoch_end(self, state):
        if diverged(state):
            return None
        loss = state.metrics.get("running_loss", state.metrics["train_loss"])
        if self.best is None or loss < self.best - self.min_delta:
            self.best, self.waited = loss, 0
            return None
        self.waited += 1
        return "plateau" if self.waited >= self.patience else None


@hookimpl
def ablate_register_stopping_rules(registry):
    registry.add(
        "early_stopping",
        EarlyStopping,
        help="stop when validation stops improving",
        params={
            "monitor": Param("val_loss", choices=("val_loss", "val_accuracy"), help="validation metric to watch"),
            "patience": Param(5, low=1, help="epochs without improvement before stopping"),
            "min_delta": Param(0.0, low=0.0, help="smallest change that counts as improvement"),
            "restore_best": Param(True, help="end with the best epoch's weights"),
        },
    )
    registry.add(
        "max_epochs",
        MaxEpochs,
        help="stop at a given epoch",
        params={"epochs": Param(10, low=1, high=100_000, help="last epoch")},
    )
    registry.add(
        "divergence",
        Divergence,
        help="stop a run whose training loss is NaN/inf or too large (a stopped run, not a failed one)",
        params={
            "max_loss": Param(1e3, low=0.0, low_open=True, help="training loss above this diverged"),
            "restore": Param(True, help="end with the last healthy epoch's weights"),
        },
    )
    registry.add(
        "time_budget",
        TimeBudget,
        help="stop after a wall-time budget per run",
        params={"seconds": Param(60.0, low=0.0, low_open=True, help="seconds per run")},
    )
    registry.add(
        "plateau",
        Plateau,
        help="stop when the training loss stops improving",
        params={
            "patience": Param(5, low=1, help="epochs without improvement before stopping"),
            "min_delta": Param(1e-4, low=0.0, help="smallest decrease that counts as improvement"),
        },
    )
