"""One run: a RunSpec -> RunResult with per-epoch history.

Data lives on the device as tensors and batches are ``randperm`` index slices:
on small data this is several times faster than a per-row DataLoader.
Each epoch records the leaderboard's own quantities (eval mode, full splits)
and, separately, the running train-mode loss and accuracy.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ablate.components import Batch, DataSplits, EpochState, StepState
from ablate.plugin.registry import Registry
from ablate.spec import COMPILE_ALONE, Execution, RunSpec
from ablate.train.build import RunFailed, RunParts, build_run, pick_device, prepare_process
from ablate.train.compiled import TOLERANCE, TrainingForward
from ablate.train.optimizers import Optimizer, set_lr
from ablate.train.precision import OptimizerStep, autocast, optimizer_step, precision_of, stack_problem
from ablate.train.run_result import RunResult

# Rows a split is evaluated in at once. On a CPU, a conv net runs three times slower
# on two thousand 32x32 images at once than on a hundred (its activations no longer fit
# the caches), while an MLP on 64 features is as fast either way: a chunk holds about
# CPU_CHUNK_ELEMENTS input values on a CPU, GPU_CHUNK_ELEMENTS on a GPU (its memory),
# from 64 rows to EVAL_CHUNK. Small inputs (digits, MNIST-1D) are one chunk, as before.
EVAL_CHUNK = 8192
CPU_CHUNK_ELEMENTS = 2**19
GPU_CHUNK_ELEMENTS = 2**26
OnEpoch = Callable[[dict[str, float]], None]

__all__ = ["RunFailed", "RunResult", "batch_bounds", "evaluate", "train_run"]


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(loss, accuracy) on a whole split, eval mode, in chunks; NaN for an empty split."""
    if len(x) == 0:
        return math.nan, math.nan
    was_training = model.training
    model.eval()
    loss_sum, correct = 0.0, 0
    rows = eval_chunk(x)
    for start in range(0, len(x), rows):
        logits = model(x[start : start + rows])
        target = y[start : start + rows]
        loss_sum += F.cross_entropy(logits, target, reduction="sum").item()
        correct += int((logits.argmax(1) == target).sum().item())
    model.train(was_training)
    return loss_sum / len(x), correct / len(x)


def eval_chunk(x: torch.Tensor) -> int:
    """How many rows of ``x`` to evaluate at once (see CPU_CHUNK_ELEMENTS)."""
    per_row = max(int(x[0].numel()), 1) if len(x) else 1
    budget = CPU_CHUNK_ELEMENTS if x.device.type == "cpu" else GPU_CHUNK_ELEMENTS
    return max(64, min(EVAL_CHUNK, budget // per_row))


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for class indices or soft target distributions (mixup)."""
    if target.dtype.is_floating_point:
        return -(target * F.log_softmax(logits, dim=1)).sum(1).mean()
    return F.cross_entropy(logits, target)


def with_penalties(loss: torch.Tensor, penalties: list[torch.Tensor]) -> torch.Tensor:
    """The loss plus every component's penalty, added in call order."""
    for penalty in penalties:
        loss = loss + penalty
    return loss


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """(start, end) of each batch; a last batch of one sample joins the one
    before it (batch norm cannot normalise a single sample)."""
    bounds = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


@dataclass(frozen=True)
class LrPlan:
    """A run's learning rate per optimizer step: its schedule (None: [train] lr
    throughout), told the steps per epoch and the total steps before the first step,
    then its components' ``ablate_learning_rate`` (``steer``; None where none has one)."""

    schedule: Any
    base: float
    steps_per_epoch: int
    total_steps: int
    batch_size: int
    steer: Callable[..., Any] | None = None

    def scheduled(self, step: int) -> float:
        """The schedule's learning rate of ``step`` (before any component's)."""
        if self.schedule is None:
            return self.base
        return float(self.schedule.lr(step, self.base, self.steps_per_epoch, self.total_steps))

    def at(self, step: int) -> float:
        lr = self.scheduled(step)
        if self.steer is None:
            return lr
        epoch = step // self.steps_per_epoch + 1
        state = StepState(epoch, step, self.steps_per_epoch, self.total_steps, self.batch_size, lr)
        steered = self.steer(state=state, scheduled=self.scheduled)
        return lr if steered is None else float(steered)

    def state(self, epoch: int, step: int) -> StepState:
        return StepState(epoch, step, self.steps_per_epoch, self.total_steps, self.batch_size, self.at(step))

    def apply(self, optimizer: Optimizer, step: int, state: StepState | None = None) -> None:
        """Set the learning rate of ``step`` (nothing to set at a constant [train] lr),
        ``state``'s where the step has one (its rate already asked of the components)."""
        if self.schedule is not None or self.steer is not None:
            set_lr(optimizer, state.lr if state is not None else self.at(step))


def lr_plan(parts: RunParts) -> LrPlan:
    batch_size = int(parts.spec.train["batch_size"])
    per_epoch = len(batch_bounds(len(parts.data.x_train), batch_size))
    total = per_epoch * int(parts.spec.train["epochs"])
    steer = parts.hooks.ablate_learning_rate if parts.has("ablate_learning_rate") else None
    lr = float(parts.spec.train["lr"])
    return LrPlan(parts.recipe.get("schedule"), lr, per_epoch, total, batch_size, steer)


def precision_context(parts: RunParts) -> contextlib.AbstractContextManager[Any]:
    """The training forward pass's precision: bf16 or fp16 under autocast, else as is."""
    return autocast(parts.spec, parts.device)


def train_run(
    spec: RunSpec, registry: Registry, execution: Execution | None = None, on_epoch: OnEpoch | None = None
) -> RunResult:
    """Train one run and measure it; raise RunFailed on divergence.

    ``on_epoch`` sees each epoch's metrics (the engine reports them to Optuna's
    pruner; an exception it raises, such as RunPruned, ends the run).
    """
    started = time.perf_counter()
    execution = execution or Execution()
    prepare_process(execution.threads)
    parts = build_run(spec, registry, pick_device(execution.device))
    forward = TrainingForward(parts.model, execution.compile, TOLERANCE[precision_of(spec)])
    history, stop_reason = train_epochs(parts, on_epoch, started, forward)
    result = finish_run(parts, history, stop_reason, lambda: time.perf_counter() - started)
    result.compile = forward.status
    if execution.stack != "off":  # the run record says why it trained alone
        result.unstacked = stack_problem(spec) or (COMPILE_ALONE if execution.compile else "")
    return result


def train_epochs(
    parts: RunParts, on_epoch: OnEpoch | None, started: float, forward: TrainingForward | None = None
) -> tuple[list[dict[str, float]], str]:
    """The epoch loop: train, measure, ask the stopping rules; (history, stop reason).
    ``forward`` is the training forward pass (default: the model, eager)."""
    forward = forward or TrainingForward(parts.model)
    generator = torch.Generator(device=parts.device).manual_seed(parts.spec.seed)
    history: list[dict[str, float]] = []
    plan = lr_plan(parts)
    stepper = optimizer_step(parts.spec, parts.device, lambda: (parts.optimizer, parts.pre_step), parts.model)
    for epoch in range(1, int(parts.spec.train["epochs"]) + 1):
        skipped = stepper.skipped
        running = train_one_epoch(parts, generator, plan, epoch, (forward, stepper))
        train, val = (evaluate(parts.model, x, y) for x, y in eval_splits(parts.data))
        metrics = epoch_record(epoch, train, val, running, plan.at(epoch * plan.steps_per_epoch - 1))
        if stepper.scaler is not None:  # fp16: the steps its scaler skipped (inf gradients) this epoch
            metrics["skipped_steps"] = stepper.skipped - skipped
        reason = end_epoch(parts, history, metrics, on_epoch, lambda: parts.model, started)
        if reason is not None:
            return history, reason
    return history, "max_epochs"


def eval_splits(data: DataSplits) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    """The splits each epoch's record measures: train and validation."""
    return (data.x_train, data.y_train), (data.x_val, data.y_val)


def epoch_record(
    epoch: int, train: tuple[float, float], val: tuple[float, float], running: tuple[float, float], lr: float
) -> dict[str, float]:
    """An epoch's history entry: eval-mode (loss, accuracy) on the full train and
    validation splits (the leaderboard's quantities), the running train-mode ones
    and the learning rate of the epoch's last step."""
    return {
        "epoch": epoch,
        "train_loss": train[0],
        "train_accuracy": train[1],
        "val_loss": val[0],
        "val_accuracy": val[1],
        "running_loss": running[0],
        "running_accuracy": running[1],
        "lr": lr,
    }


def divergence(running_loss: float, epoch: int) -> RunFailed | None:
    """The failure of a run whose training loss is not finite, or None."""
    if math.isfinite(running_loss):
        return None
    return RunFailed(f"diverged: training loss became {running_loss} in epoch {epoch}")


def end_epoch(
    parts: RunParts,
    history: list[dict[str, float]],
    metrics: dict[str, float],
    on_epoch: OnEpoch | None,
    model_now: Callable[[], torch.nn.Module],
    started: float,
) -> str | None:
    """One run's epoch end, stacked or alone: record the epoch, report it, ask the
    stopping rules (with ``model_now()``, the run's own model holding its weights).
    Returns a stop reason or None to go on; raises RunFailed on divergence, unless
    an active stopping rule (such as "divergence") sees it first and stops the run."""
    failure = divergence(metrics["running_loss"], int(metrics["epoch"]))
    stops = parts.has("ablate_epoch_end")
    if failure is not None and not stops:
        raise failure
    history.append(metrics)
    if on_epoch is not None and failure is None:
        on_epoch(metrics)
    if stops:
        max_epochs = int(parts.spec.train["epochs"])
        elapsed = time.perf_counter() - started
        epoch, plan = int(metrics["epoch"]), lr_plan(parts)
        state = EpochState(
            epoch,
            max_epochs,
            model_now(),
            metrics,
            history,
            elapsed,
            epoch * plan.steps_per_epoch,
            plan.steps_per_epoch,
            plan.total_steps,
            plan.batch_size,
        )
        reasons = [r for r in parts.hooks.ablate_epoch_end(state=state) if r]
        if reasons:
            return str(reasons[0])
    if failure is not None:
        raise failure
    return None


def finish_run(
    parts: RunParts, history: list[dict[str, float]], stop_reason: str, seconds: Callable[[], float], stack: int = 1
) -> RunResult:
    """One run's ending, stacked or alone: the train-end hooks on its own model
    (holding its final weights), the final measurement, its RunResult."""
    parts.hooks.ablate_train_end(model=parts.model, stop_reason=stop_reason, data=parts.data)
    metrics = measure(parts)
    return RunResult(
        metrics=metrics,
        history=history,
        epochs=len(history),
        stop_reason=stop_reason,
        seconds=seconds(),
        config=parts.spec.identity_json(),
        device=str(parts.device),
        threads=torch.get_num_threads(),
        sizes={split: len(getattr(parts.data, f"y_{split}")) for split in ("train", "val", "test")},
        stack=stack,
    )


def train_one_epoch(
    parts: RunParts,
    generator: torch.Generator,
    plan: LrPlan,
    epoch: int,
    loop: tuple[TrainingForward, OptimizerStep],
) -> tuple[float, float]:
    """One pass over the training split in random batches; (running loss, running accuracy).
    Under fp16 the step's gradients are unscaled before the before-step hooks see them."""
    data, model, hooks = parts.data, parts.model, parts.hooks
    forward, stepper = loop
    transform, penalise, before, after = (
        parts.has(h)
        for h in ("ablate_transform_batch", "ablate_loss_penalty", "ablate_before_step", "ablate_after_step")
    )
    n = len(data.x_train)
    order = torch.randperm(n, generator=generator, device=parts.device)
    loss_sum = torch.zeros((), device=parts.device)
    correct = torch.zeros((), device=parts.device, dtype=torch.long)
    model.train()
    first = (epoch - 1) * plan.steps_per_epoch
    for step, (start, end) in enumerate(batch_bounds(n, int(parts.spec.train["batch_size"])), first):
        idx = order[start:end]
        state = plan.state(epoch, step) if transform or before else None  # one per step: the lr may be a hook's
        batch = Batch(data.x_train[idx], data.y_train[idx], generator, state)
        if transform:
            hooks.ablate_transform_batch(batch=batch)
        with precision_context(parts):
            logits = forward(batch.x)
            loss = soft_cross_entropy(logits, batch.y)
            total = with_penalties(loss, hooks.ablate_loss_penalty(model=model)) if penalise else loss
        parts.optimizer.zero_grad(set_to_none=True)
        stepper.backward(total)
        plan.apply(parts.optimizer, step, state)  # after the first forward: a lazy module's weights exist by then
        stepper.unscale()
        if before:
            hooks.ablate_before_step(model=model, state=state)
        stepper()
        if after:
            hooks.ablate_after_step(model=model)
        loss_sum += loss.detach() * len(idx)
        hard = batch.y.argmax(1) if batch.y.dtype.is_floating_point else batch.y
        correct += (logits.detach().argmax(1) == hard).sum()
    return loss_sum.item() / n, correct.item() / n


def measure(parts: RunParts) -> dict[str, float]:
    """Final metrics on all three splits, eval mode, with the weights the run ends with."""
    final: dict[str, float] = {}
    for split in ("train", "val", "test"):
        loss, acc = evaluate(parts.model, getattr(parts.data, f"x_{split}"), getattr(parts.data, f"y_{split}"))
        final[f"{split}_loss"], final[f"{split}_accuracy"] = loss, acc
    final["gap"] = final["train_accuracy"] - final["test_accuracy"]
    final["loss_gap"] = final["test_loss"] - final["train_loss"]
    return final
