"""A run's precision: the autocast of its training forward pass and, for fp16,
the gradient scaler around its optimizer step.

fp16's narrow range underflows small gradients, so its loss is scaled up before
backward and the gradients scaled back before anything reads them
(``torch.amp.GradScaler``, on the run's device: CUDA, or a CPU). A step whose
gradients hold an inf or NaN is skipped and the scale lowered; that is the
scaler at work, not a divergence (the run's loss stays finite). bf16 has fp32's
range and needs no scaler.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import cached_property
from typing import Any

import torch

from ablate.spec import RunSpec
from ablate.train.optimizers import Optimizer, PreStep

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
INIT_SCALE = 2.0**16  # torch's default (tests start higher, to see steps skipped)

# A stack has one scaler: an inf in one seed's gradients would skip every seed's
# step (and lower every seed's scale), coupling runs that must be independent.
FP16_ALONE = (
    "precision fp16 trains each seed alone: a stack's one gradient scaler would skip "
    "every seed's step when one seed's gradients overflow"
)


def precision_of(spec: RunSpec) -> str:
    return str(spec.train.get("precision", "fp32"))


def autocast(spec: RunSpec, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """The training forward pass's precision: bf16 or fp16 under autocast, else as is."""
    dtype = DTYPES.get(precision_of(spec))
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def stack_problem(spec: RunSpec) -> str | None:
    """Why this run's seeds cannot share a stack because of its precision, or None."""
    return FP16_ALONE if precision_of(spec) == "fp16" else None


class OptimizerStep:
    """A run's backward and optimizer step, with fp16's gradient scaler where the
    run has one: ``backward`` (the scaled loss), ``unscale`` (before the
    before-step hooks, so clipping sees the true gradients), ``step`` (the
    optimizer's step, skipped by the scaler on an inf; then the scale's update).

    GradScaler reads ``param_groups`` and calls ``step()``: this object is the
    optimizer it sees, so the flat optimizer and a pre-step action (SGD's
    decoupled weight decay) are skipped together with the step."""

    def __init__(
        self,
        made: Callable[[], tuple[Optimizer, PreStep | None]],
        model: torch.nn.Module,
        scaler: torch.amp.GradScaler | None,
    ):
        self.made, self.model, self.scaler = made, model, scaler
        self.taken = 0  # optimizer steps taken
        self.asked = 0  # optimizer steps asked for (the skipped ones are the difference)

    @cached_property
    def param_groups(self) -> list[dict[str, Any]]:
        """Read after the first forward (a lazy module's weights exist by then)."""
        return [{"params": [p for p in self.model.parameters() if p.requires_grad]}]

    @property
    def skipped(self) -> int:
        return self.asked - self.taken

    def backward(self, loss: torch.Tensor) -> None:
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def unscale(self) -> None:
        if self.scaler is not None:
            self.scaler.unscale_(self)  # type: ignore[arg-type]  # GradScaler needs param_groups and step

    def step(self) -> None:
        """The optimizer step (GradScaler calls this only where the gradients are finite)."""
        self.taken += 1
        optimizer, pre_step = self.made()
        if pre_step is not None:
            pre_step()
        optimizer.step()

    def __call__(self) -> None:
        """Take (or, under the scaler, maybe skip) this step and update the scale."""
        self.asked += 1
        if self.scaler is None:
            self.step()
            return
        self.scaler.step(self)  # type: ignore[arg-type]
        self.scaler.update()


def optimizer_step(
    spec: RunSpec, device: torch.device, made: Callable[[], tuple[Optimizer, PreStep | None]], model: torch.nn.Module
) -> OptimizerStep:
    """The run's step: with a GradScaler on the run's device for fp16, else plain.
    ``made`` gives the optimizer and pre-step, made at the first step (after the
    first forward, as lazy modules need)."""
    scaler = torch.amp.GradScaler(device.type, init_scale=INIT_SCALE) if precision_of(spec) == "fp16" else None
    return OptimizerStep(made, model, scaler)
