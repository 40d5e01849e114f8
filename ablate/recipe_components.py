"""The public contracts of the optimizer and schedule kinds, torch-free.

An optimizer component makes the run's optimizer over its trainable parameters;
the learning rate it starts from is ``[train] lr`` and the run's schedule sets it
before every step (``param_groups[i]["lr"]``). A schedule component is a pure
function of the step: it is told the steps per epoch and the total steps, so a
warmup or a cosine knows where it is from the first step on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only
    import torch

__all__ = ["OptimizerComponent", "ScheduleComponent"]


class OptimizerComponent:
    """Base of an optimizer component.

    ``make(params, lr)`` returns a ``torch.optim.Optimizer``. ``elementwise``: each
    element's step depends on that element's own gradient and state only (Adam,
    SGD); only then can the seeds of an arm train as one stacked model with it,
    else its arm's seeds train alone (and ``ablate plan`` says so). ablate's own
    optimizers also give ``flat`` and ``settings()``, which the flat optimizer
    (ablate.optimizers) carries out, bit for bit as torch's own class.
    """

    elementwise = False
    flat = ""  # "adam", "sgd" or "rmsprop" for the built-ins: the flat optimizer's rule
    torch_class = ""  # the torch.optim class the built-in equals
    accepts: tuple[str, ...] = ()  # the optimizer options (ablate_optimizer_options) it takes

    def settings(self) -> dict[str, Any]:
        """The keyword arguments of ``torch_class`` besides ``lr`` (built-ins)."""
        return {}

    def make(self, params: list[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
        import torch

        return getattr(torch.optim, self.torch_class)(params, lr=lr, **self.settings())


class ScheduleComponent:
    """Base of a schedule: ``warmup_epochs`` of linear warmup (per step, from
    lr/W to lr over the first W steps), then ``main`` over the remaining steps."""

    def __init__(self, warmup_epochs: float = 0.0):
        self.warmup_epochs = warmup_epochs

    def lr(self, step: int, base_lr: float, steps_per_epoch: int, total_steps: int) -> float:
        warmup = min(round(self.warmup_epochs * steps_per_epoch), total_steps)
        if step < warmup:
            return base_lr * (step + 1) / warmup
        return self.main(step - warmup, base_lr, steps_per_epoch, total_steps - warmup)

    def main(self, step: int, base_lr: float, steps_per_epoch: int, total_steps: int) -> float:
        """The learning rate ``step`` steps after the warmup, of ``total_steps`` after it."""
        raise NotImplementedError
