"""Stopping rules, consulted at every epoch end."""

from __future__ import annotations

import copy

from ablate import Param, hookimpl


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
    def ablate_epoch_end(self, state):
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


@hookimpl
def ablate_register_stopping_rules(registry):
    registry.add("early_stopping", EarlyStopping, help="stop when validation stops improving",
                 params={"monitor": Param("val_loss", choices=("val_loss", "val_accuracy"),
                                          help="validation metric to watch"),
                         "patience": Param(5, low=1, help="epochs without improvement before stopping"),
                         "min_delta": Param(0.0, low=0.0, help="smallest change that counts as improvement"),
                         "restore_best": Param(True, help="end with the best epoch's weights")})
