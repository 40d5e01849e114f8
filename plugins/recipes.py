"""Optimizers and learning-rate schedules: the training recipe as components.

Each optimizer equals torch's class of the same name with the same settings (the
flat optimizer in ablate.train.optimizers carries it out, bit for bit on a CPU); the
learning rate is ``[train] lr``, set before each step by the run's schedule.
Each schedule warms up linearly over ``warmup_epochs`` (per step), then follows
its torch counterpart over the remaining steps (tests/test_recipes.py).
"""

from __future__ import annotations

import math
from typing import Any

from ablate import OptimizerComponent, Param, ScheduleComponent, hookimpl

WEIGHT_DECAY = Param(0.0, low=0.0, high=1.0, help="weight decay (L2 added to the gradient; AdamW: decoupled)")
EPS = Param(1e-8, low=0.0, low_open=True, high=1.0, help="term added to the denominator")
WARMUP = Param(0.0, low=0.0, high=10_000.0, help="epochs of linear warmup, stepped per optimizer step")


class Sgd(OptimizerComponent):
    """torch.optim.SGD: momentum (dampening, Nesterov), weight decay."""

    elementwise, flat, torch_class = True, "sgd", "SGD"
    accepts = ("weight_decay", "decoupled_weight_decay")
    per_seat = ("momentum", "weight_decay")  # the flat SGD holds them per seat of a stack

    def __init__(self, momentum: float, dampening: float, nesterov: bool, weight_decay: float):
        self.momentum, self.dampening, self.nesterov, self.weight_decay = momentum, dampening, nesterov, weight_decay

    def settings(self) -> dict[str, Any]:
        return {
            "momentum": self.momentum,
            "dampening": self.dampening,
            "nesterov": self.nesterov,
            "weight_decay": self.weight_decay,
        }


class Adam(OptimizerComponent):
    """torch.optim.Adam (weight decay added to the gradient)."""

    elementwise, flat, torch_class = True, "adam", "Adam"
    accepts = ("weight_decay", "decoupled_weight_decay")
    per_seat = ("weight_decay",)  # the flat Adam holds it per seat of a stack

    def __init__(self, beta1: float, beta2: float, eps: float, weight_decay: float):
        self.betas, self.eps, self.weight_decay = (beta1, beta2), eps, weight_decay

    def settings(self) -> dict[str, Any]:
        return {"betas": self.betas, "eps": self.eps, "weight_decay": self.weight_decay}


class AdamW(Adam):
    """torch.optim.AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, 2019)."""

    torch_class = "AdamW"
    accepts = ()


class RMSprop(OptimizerComponent):
    """torch.optim.RMSprop (alpha, eps, momentum, centered, weight decay)."""

    elementwise, flat, torch_class = True, "rmsprop", "RMSprop"
    accepts = ("weight_decay",)
    per_seat = ("weight_decay",)  # the flat RMSprop holds it per seat of a stack

    def __init__(self, alpha: float, eps: float, momentum: float, centered: bool, weight_decay: float):
        self.alpha, self.eps, self.momentum, self.centered, self.weight_decay = (
            alpha,
            eps,
            momentum,
            centered,
            weight_decay,
        )

    def settings(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "eps": self.eps,
            "momentum": self.momentum,
            "centered": self.centered,
            "weight_decay": self.weight_decay,
        }


BETA = {"low": 0.0, "high": 1.0, "high_open": True}
ADAM_PARAMS = {
    "beta1": Param(0.9, help="decay of the gradient's running mean", **BETA),  # type: ignore[arg-type]
    "beta2": Param(0.999, help="decay of the squared gradient's running mean", **BETA),  # type: ignore[arg-type]
    "eps": EPS,
}


@hookimpl
def ablate_register_optimizers(registry):
    registry.add(
        "sgd",
        Sgd,
        params={
            "momentum": Param(0.9, low=0.0, high=1.0, high_open=True, help="momentum ([train] momentum by default)"),
            "dampening": Param(0.0, low=0.0, high=1.0, help="dampening of the momentum"),
            "nesterov": Param(False, help="Nesterov momentum (needs momentum > 0, dampening 0)"),
            "weight_decay": WEIGHT_DECAY,
        },
        help="stochastic gradient descent (torch.optim.SGD)",
    )
    registry.add("adam", Adam, params={**ADAM_PARAMS, "weight_decay": WEIGHT_DECAY}, help="Adam (torch.optim.Adam)")
    registry.add(
        "adamw",
        AdamW,
        params={**ADAM_PARAMS, "weight_decay": Param(0.01, low=0.0, high=1.0, help="decoupled weight decay")},
        help="Adam with decoupled weight decay (torch.optim.AdamW)",
    )
    registry.add(
        "rmsprop",
        RMSprop,
        params={
            "alpha": Param(0.99, low=0.0, high=1.0, high_open=True, help="decay of the squared gradient's mean"),
            "eps": EPS,
            "momentum": Param(0.0, low=0.0, high=1.0, high_open=True, help="momentum"),
            "centered": Param(False, help="normalise by the gradient's estimated variance"),
            "weight_decay": WEIGHT_DECAY,
        },
        help="RMSprop (torch.optim.RMSprop)",
    )


class Constant(ScheduleComponent):
    """The learning rate as given (after any warmup)."""

    def main(self, step, base_lr, steps_per_epoch, total_steps):
        return base_lr


class StepDecay(ScheduleComponent):
    """torch's StepLR stepped once per epoch: times ``gamma`` every ``step_size`` epochs."""

    def __init__(self, step_size: int, gamma: float, warmup_epochs: float):
        super().__init__(warmup_epochs)
        self.step_size, self.gamma = step_size, gamma

    def main(self, step, base_lr, steps_per_epoch, total_steps):
        return base_lr * self.gamma ** ((step // steps_per_epoch) // self.step_size)


class Cosine(ScheduleComponent):
    """Cosine annealing (Loshchilov & Hutter, 2017) per step from lr down to
    ``min_lr``, reached at the last step (torch's CosineAnnealingLR with T_max =
    the steps after warmup - 1)."""

    def __init__(self, min_lr: float, warmup_epochs: float):
        super().__init__(warmup_epochs)
        self.min_lr = min_lr

    def main(self, step, base_lr, steps_per_epoch, total_steps):
        span = max(total_steps - 1, 1)
        return self.min_lr + (base_lr - self.min_lr) * (1 + math.cos(math.pi * step / span)) / 2


class OneCycle(ScheduleComponent):
    """The one-cycle policy (Smith & Topin, 2019) as torch's OneCycleLR with cosine
    annealing and no momentum cycling: from lr/div_factor up to lr over
    ``pct_start`` of the steps, then down to lr/div_factor/final_div_factor."""

    def __init__(self, pct_start: float, div_factor: float, final_div_factor: float, warmup_epochs: float):
        super().__init__(warmup_epochs)
        self.pct_start, self.div_factor, self.final_div_factor = pct_start, div_factor, final_div_factor

    def main(self, step, base_lr, steps_per_epoch, total_steps):
        initial = base_lr / self.div_factor
        phases = [
            (float(self.pct_start * total_steps) - 1, initial, base_lr),
            (total_steps - 1, base_lr, initial / self.final_div_factor),
        ]
        start_step = 0.0
        for i, (end_step, start_lr, end_lr) in enumerate(phases):
            if step <= end_step or i == len(phases) - 1:
                pct = (step - start_step) / (end_step - start_step)
                return end_lr + (start_lr - end_lr) / 2.0 * (math.cos(math.pi * pct) + 1)
            start_step = end_step
        raise AssertionError("unreachable")


@hookimpl
def ablate_register_schedules(registry):
    registry.add("constant", Constant, params={"warmup_epochs": WARMUP}, help="a constant learning rate")
    registry.add(
        "step",
        StepDecay,
        params={
            "step_size": Param(30, low=1, help="epochs between decays"),
            "gamma": Param(0.1, low=0.0, low_open=True, high=1.0, help="factor of each decay"),
            "warmup_epochs": WARMUP,
        },
        help="step decay (torch's StepLR, per epoch)",
    )
    registry.add(
        "cosine",
        Cosine,
        params={
            "min_lr": Param(0.0, low=0.0, high=10.0, help="the learning rate at the last step"),
            "warmup_epochs": WARMUP,
        },
        help="cosine annealing to min_lr, per step",
    )
    registry.add(
        "onecycle",
        OneCycle,
        params={
            "pct_start": Param(0.3, low=0.0, low_open=True, high=1.0, high_open=True, help="share of steps rising"),
            "div_factor": Param(25.0, low=1.0, help="lr / the starting learning rate"),
            "final_div_factor": Param(1e4, low=1.0, help="starting lr / the final learning rate"),
            "warmup_epochs": WARMUP,
        },
        help="the one-cycle policy (torch's OneCycleLR, cosine, no momentum cycling)",
    )


def swa_anneal(lr0: float, swa_lr: float, steps: int, anneal_epochs: int, strategy: str) -> float:
    """torch.optim.swa_utils.SWALR's learning rate after ``steps`` of its steps (one
    per epoch), made on an optimizer at ``lr0``: from lr0 to swa_lr over
    ``anneal_epochs`` ("cos" or "linear"), then swa_lr. Closed form; torch's is
    recursive, so the two agree to rounding (tests/train/test_swa_lr.py)."""
    if anneal_epochs == 0:
        steps = max(1, steps)
    t = max(0.0, min(1.0, steps / max(1, anneal_epochs)))
    alpha = (1 - math.cos(math.pi * t)) / 2 if strategy == "cos" else t
    if alpha == 1:
        return swa_lr
    return swa_lr * alpha + lr0 * (1 - alpha)
