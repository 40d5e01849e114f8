"""One run: a RunSpec -> RunResult with per-epoch history.

Data lives on the device as tensors and batches are ``randperm`` index slices:
on small data this is several times faster than a per-row DataLoader.
Each epoch records the leaderboard's own quantities (eval mode, full splits)
and, separately, the running train-mode loss and accuracy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ablate.components import Batch, EpochState
from ablate.plugin.registry import Registry
from ablate.spec import Execution, RunSpec
from ablate.train.build import RunFailed, RunParts, build_run, pick_device, prepare_process
from ablate.train.run_result import RunResult

EVAL_CHUNK = 8192
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
    for start in range(0, len(x), EVAL_CHUNK):
        logits = model(x[start : start + EVAL_CHUNK])
        target = y[start : start + EVAL_CHUNK]
        loss_sum += F.cross_entropy(logits, target, reduction="sum").item()
        correct += int((logits.argmax(1) == target).sum().item())
    model.train(was_training)
    return loss_sum / len(x), correct / len(x)


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
    history, stop_reason = train_epochs(parts, on_epoch, started)
    parts.hooks.ablate_train_end(model=parts.model, stop_reason=stop_reason)
    sizes = {split: len(getattr(parts.data, f"y_{split}")) for split in ("train", "val", "test")}
    return RunResult(
        measure(parts),
        history,
        len(history),
        stop_reason,
        time.perf_counter() - started,
        spec.to_json(),
        str(parts.device),
        torch.get_num_threads(),
        sizes,
    )


def train_epochs(parts: RunParts, on_epoch: OnEpoch | None, started: float) -> tuple[list[dict[str, float]], str]:
    """The epoch loop: train, measure, ask the stopping rules; (history, stop reason)."""
    generator = torch.Generator(device=parts.device).manual_seed(parts.spec.seed)
    stops = parts.has("ablate_epoch_end")
    max_epochs = int(parts.spec.train["epochs"])
    history: list[dict[str, float]] = []
    for epoch in range(1, max_epochs + 1):
        running_loss, running_acc = train_one_epoch(parts, generator)
        # A non-finite loss fails the run, unless an active stopping rule (such as
        # "divergence") sees it first and stops the run with its own reason.
        diverged = not math.isfinite(running_loss)
        failure = f"diverged: training loss became {running_loss} in epoch {epoch}"
        if diverged and not stops:
            raise RunFailed(failure)
        metrics = epoch_metrics(parts, epoch, running_loss, running_acc)
        history.append(metrics)
        if on_epoch is not None and not diverged:
            on_epoch(metrics)
        if stops:
            state = EpochState(epoch, max_epochs, parts.model, metrics, history, time.perf_counter() - started)
            reasons = [r for r in parts.hooks.ablate_epoch_end(state=state) if r]
            if reasons:
                return history, reasons[0]
        if diverged:
            raise RunFailed(failure)
    return history, "max_epochs"


def train_one_epoch(parts: RunParts, generator: torch.Generator) -> tuple[float, float]:
    """One pass over the training split in random batches; (running loss, running accuracy)."""
    data, model, hooks = parts.data, parts.model, parts.hooks
    transform, penalise, after = (
        parts.has(h) for h in ("ablate_transform_batch", "ablate_loss_penalty", "ablate_after_step")
    )
    n = len(data.x_train)
    order = torch.randperm(n, generator=generator, device=parts.device)
    loss_sum = torch.zeros((), device=parts.device)
    correct = torch.zeros((), device=parts.device, dtype=torch.long)
    model.train()
    for start, end in batch_bounds(n, int(parts.spec.train["batch_size"])):
        idx = order[start:end]
        batch = Batch(data.x_train[idx], data.y_train[idx], generator)
        if transform:
            hooks.ablate_transform_batch(batch=batch)
        logits = model(batch.x)
        loss = soft_cross_entropy(logits, batch.y)
        total = with_penalties(loss, hooks.ablate_loss_penalty(model=model)) if penalise else loss
        parts.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if parts.pre_step is not None:
            parts.pre_step()
        parts.optimizer.step()
        if after:
            hooks.ablate_after_step(model=model)
        loss_sum += loss.detach() * len(idx)
        hard = batch.y.argmax(1) if batch.y.dtype.is_floating_point else batch.y
        correct += (logits.detach().argmax(1) == hard).sum()
    return loss_sum.item() / n, correct.item() / n


def epoch_metrics(parts: RunParts, epoch: int, running_loss: float, running_acc: float) -> dict[str, float]:
    """The epoch's record: eval-mode loss and accuracy on the full train and
    validation splits (the leaderboard's quantities) and the running train-mode ones."""
    data = parts.data
    train_loss, train_acc = evaluate(parts.model, data.x_train, data.y_train)
    val_loss, val_acc = evaluate(parts.model, data.x_val, data.y_val)
    return {
        "epoch": epoch,
        "train_loss": train_loss,
        "train_accuracy": train_acc,
        "val_loss": val_loss,
        "val_accuracy": val_acc,
        "running_loss": running_loss,
        "running_accuracy": running_acc,
    }


def measure(parts: RunParts) -> dict[str, float]:
    """Final metrics on all three splits, eval mode, with the weights the run ends with."""
    final: dict[str, float] = {}
    for split in ("train", "val", "test"):
        loss, acc = evaluate(parts.model, getattr(parts.data, f"x_{split}"), getattr(parts.data, f"y_{split}"))
        final[f"{split}_loss"], final[f"{split}_accuracy"] = loss, acc
    final["gap"] = final["train_accuracy"] - final["test_accuracy"]
    final["loss_gap"] = final["test_loss"] - final["train_loss"]
    return final
