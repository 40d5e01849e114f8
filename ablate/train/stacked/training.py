"""train_group: the runs of one arm that differ only in seed, trained as ONE
model with a leading seed dimension.

Each run keeps what its unstacked run has: initial weights (each model is built
by ``build_run``, then the weights are stacked), batch order and augmentation
draws (its own generator, seeded as ``train_epochs`` seeds it), dropout masks
(its own stream), optimizer state (Adam and SGD are element-wise, and the loss
is the sum of the seeds' losses, so each seed gets exactly its own gradients),
stopping rules (called with its own model holding its weights), and failure (a
diverging or raising run fails alone; the others go on). A run that stops
leaves the stack; its final measurement runs on its own model, as train_run's
does, and its result has the same history keys, metrics and stop reasons.
If the stacked training itself fails (a stacked layer raised), the runs not
yet finished train alone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ablate.components import Batch, StepState
from ablate.plugin.registry import Registry
from ablate.spec import Execution, RunSpec
from ablate.train.build import pick_device, prepare_process
from ablate.train.stacked.components import StepHook, total_penalty
from ablate.train.stacked.group import OnEpoch, Outcome, Seat, Stack, build_seat, seats_problem
from ablate.train.stacked.units import stack_key
from ablate.train.training import (
    RunResult,
    batch_bounds,
    end_epoch,
    epoch_record,
    eval_chunk,
    eval_splits,
    finish_run,
    precision_context,
    train_run,
)

__all__ = ["train_group"]


def train_group(
    specs: Sequence[RunSpec],
    registry: Registry,
    execution: Execution | None = None,
    on_epoch: Sequence[OnEpoch | None] | None = None,
    generic: bool = False,
) -> list[RunResult | BaseException]:
    """Train runs that differ only in seed (and stopping rules) as one stacked
    model; one outcome per spec, in order: its RunResult, or the exception that failed it.

    ``on_epoch[i]`` sees run i's epoch metrics (an exception it raises ends run
    i alone). ``generic`` stacks every layer through torch.func (for measurement).
    """
    execution = execution or Execution()
    _check_one_arm(specs, registry)
    callbacks = list(on_epoch) if on_epoch is not None else [None] * len(specs)
    if not execution.may_stack(len(specs)):
        return [_alone(s, registry, execution, cb) for s, cb in zip(specs, callbacks, strict=True)]
    prepare_process(execution.threads)
    device = pick_device(execution.device)
    started = time.perf_counter()
    outcomes: list[Outcome | None] = [None] * len(specs)
    seats = []
    for i, spec in enumerate(specs):
        try:
            seats.append(build_seat(i, spec, registry, device, callbacks[i]))
        except Exception as exc:  # as train_run would raise it
            outcomes[i] = exc
    why_alone: dict[int, str] = {}
    problem = seats_problem(seats) if len(seats) > 1 else None
    if problem is not None:
        why_alone = {seat.index: f"could not share a stack: {problem}" for seat in seats}
    elif len(seats) > 1:
        for part in _vmap_parts(seats) if generic else [seats]:
            if len(part) > 1:
                why_alone.update(_train_stacked(part, outcomes, started, generic))
    for seat in seats:
        if outcomes[seat.index] is None:
            outcome = _alone(seat.parts.spec, registry, execution, _not_again(seat))
            if isinstance(outcome, RunResult):
                outcome.unstacked = why_alone.get(seat.index, "")
            outcomes[seat.index] = outcome
    return outcomes  # type: ignore[return-value]  # every entry is filled


def _check_one_arm(specs: Sequence[RunSpec], registry: Registry) -> None:
    if len({stack_key(s, registry) for s in specs}) > 1:
        raise ValueError("train_group takes runs that differ only in seed, stopping rules and dropout")


def _vmap_parts(seats: list[Seat]) -> list[list[Seat]]:
    """The seats whose networks are the same module for module, settings included:
    the generic path runs one template under vmap, so arms that share hand-stacked
    forms (with and without dropout, or at other rates) stack apart there."""
    parts: dict[str, list[Seat]] = {}
    for seat in seats:
        parts.setdefault(repr(seat.parts.model), []).append(seat)
    return list(parts.values())


def _not_again(seat: Seat) -> OnEpoch | None:
    """A seat's callback for its run trained again alone: the epochs it already
    reported from the stack are not reported twice (Optuna keeps one value per step)."""
    if seat.on_epoch is None or not seat.reported:
        return seat.on_epoch
    callback, reported = seat.on_epoch, seat.reported

    def on_epoch(metrics: dict[str, float]) -> None:
        if metrics["epoch"] > reported:
            callback(metrics)

    return on_epoch


def _alone(spec: RunSpec, registry: Registry, execution: Execution, on_epoch: OnEpoch | None) -> Outcome:
    try:
        return train_run(spec, registry, execution, on_epoch)
    except Exception as exc:  # the run's own failure, as the engine records it
        return exc


def _train_stacked(seats: list[Seat], outcomes: list[Outcome | None], started: float, generic: bool) -> dict[int, str]:
    """Train the stack and fill in the outcomes of the seats it finished; on a
    failure of the stacking itself, leave the unfinished runs to train alone, and
    say why (by seat index: the run records it)."""
    try:
        stack = Stack(seats, generic)
    except Exception as exc:
        return {seat.index: f"its stack could not be built ({_brief(exc)})" for seat in seats}
    try:
        _epochs(stack, started)
    except Exception as exc:
        return {
            seat.index: f"its stack failed in training ({_brief(exc)}); trained again alone" for seat in stack.seats
        }
    finally:
        for index, outcome in stack.outcomes.items():
            outcomes[index] = outcome
    return {}


def _brief(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 200 else text[:197] + "..."


def _epochs(stack: Stack, started: float) -> None:
    """train_epochs for a stack: each seat's epoch end is train_run's (end_epoch),
    on its own record; a seat that stops or fails leaves the stack."""
    for epoch in range(1, int(stack.spec.train["epochs"]) + 1):
        began, seats = time.perf_counter(), list(stack.seats)
        running = _train_one_epoch(stack, epoch)
        if not stack.seats:  # every seat's augmentation failed
            return
        last = epoch * stack.plan.steps_per_epoch - 1
        train, val = (evaluate_stacked(stack.model, x, y, len(stack.seats)) for x, y in eval_splits(stack.data))
        records = {
            seat: epoch_record(
                epoch,
                (train[0][p], train[1][p]),
                (val[0][p], val[1][p]),
                (running[0][p], running[1][p]),
                stack.plans[seat.index].at(last),
            )
            for p, seat in enumerate(stack.seats)
        }
        _share(seats, time.perf_counter() - began)
        done = {seat: _end_epoch(stack, seat, metrics, started) for seat, metrics in records.items()}
        _finish(stack, {seat: o for seat, o in done.items() if o is not None})
        if not stack.seats:
            return
    _finish(stack, dict.fromkeys(stack.seats, "max_epochs"))


def _share(seats: Sequence[Seat], seconds: float) -> None:
    """Charge the seats that trained together an equal share of the time."""
    for seat in seats:
        seat.seconds += seconds / len(seats)


def _train_one_epoch(stack: Stack, epoch: int) -> tuple[list[float], list[float]]:
    """One pass over the training split; each seat's (running loss, running accuracy)."""
    data, device = stack.data, stack.device
    n = len(data.x_train)
    orders = torch.stack([torch.randperm(n, generator=s.generator, device=device) for s in stack.seats])
    loss_sum = torch.zeros(len(stack.seats), device=device)
    correct = torch.zeros(len(stack.seats), device=device, dtype=torch.long)
    stack.model.train()
    first = (epoch - 1) * stack.plan.steps_per_epoch
    for step, (start, end) in enumerate(batch_bounds(n, int(stack.spec.train["batch_size"])), first):
        stack.apply_lr(step)
        idx = orders[:, start:end]
        x, y = data.x_train[idx], data.y_train[idx]
        if stack.transform:
            x, y, keep = _transform(stack, x, y, epoch, step)
            if len(keep) < len(orders):
                orders, loss_sum, correct = orders[keep], loss_sum[keep], correct[keep]
            if not stack.seats:
                return [], []
        loss, logits = train_step(stack, x, y, stack.plan.state(epoch, step) if stack.before else None)
        loss_sum += loss * (end - start)
        hard = y.argmax(-1) if y.dtype.is_floating_point else y
        correct += (logits.argmax(-1) == hard).sum(1)
    return [v / n for v in loss_sum.tolist()], [c / n for c in correct.tolist()]


def _transform(
    stack: Stack, x: torch.Tensor, y: torch.Tensor, epoch: int, step: int
) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Each seat's augmentations on its own slice with its own generator (and its own
    run's step state), as its unstacked run applies them; a seat whose augmentation
    raises fails alone."""
    xs, ys, failed = [], [], {}
    for p, seat in enumerate(stack.seats):
        batch = Batch(x[p], y[p], seat.generator, stack.plans[seat.index].state(epoch, step))
        try:
            seat.parts.hooks.ablate_transform_batch(batch=batch)
        except Exception as exc:
            failed[seat.index] = exc
            continue
        xs.append(batch.x)
        ys.append(batch.y)
    keep = stack.leave(failed)
    return (torch.stack(xs), torch.stack(ys), keep) if xs else (x, y, keep)


def seed_losses(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each seed's mean cross-entropy over its batch: (S, B, C) logits, (S, B)
    class indices or (S, B, C) soft targets -> (S,)."""
    if y.dtype.is_floating_point:
        return -(y * F.log_softmax(logits, dim=-1)).sum(-1).mean(1)
    seeds, size = y.shape
    losses = F.cross_entropy(logits.reshape(seeds * size, -1), y.reshape(-1), reduction="none")
    return losses.view(seeds, size).mean(1)


def eval_losses(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(S, N, C) logits, (S, N) class indices -> (S, N) cross-entropies, for evaluation.
    With the classes as dim 1 (a view) torch's CPU kernel runs ten times faster than
    over a last dimension of a few classes. Not in training: its gradients round
    differently from a run alone's for some batch sizes."""
    return F.cross_entropy(logits.transpose(1, 2), y, reduction="none")


def train_step(
    stack: Stack, x: torch.Tensor, y: torch.Tensor, state: StepState | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on the sum of the seeds' losses (and penalties)."""
    model = stack.model
    with precision_context(stack.seats[0].parts):
        logits = model(x)
        losses = seed_losses(logits, y)
        total = losses.sum()
        penalty = total_penalty(stack.penalties, model) if stack.penalties else None
        if penalty is not None:
            total = total + penalty
    stack.optimizer.zero_grad(set_to_none=True)
    total.backward()
    for hook in stack.before:
        assert hook.stacked is not None  # component_problem keeps an arm without one alone
        hook.stacked(model=model, state=state or stack.plan.state(1, 0))
    if stack.pre_step is not None:
        stack.pre_step()
    stack.optimizer.step()
    for hook in stack.after:
        _after_step(stack, hook)
    return losses.detach(), logits.detach()


def _after_step(stack: Stack, hook: StepHook) -> None:
    """A component's after-step hook: its stacked form, else per seed on copied-out weights."""
    if hook.stacked is not None:
        hook.stacked(model=stack.model)
        return
    for seat in stack.seats:
        hook.per_seed[stack.built[seat.index]](model=stack.copy_out(seat))
        stack.copy_in(seat)


@torch.no_grad()
def evaluate_stacked(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, seeds: int
) -> tuple[list[float], list[float]]:
    """Each seed's (loss, accuracy) on a whole split, eval mode, in chunks, as train_run's ``evaluate``."""
    if len(x) == 0:
        return [math.nan] * seeds, [math.nan] * seeds
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros(seeds, dtype=torch.float64, device=x.device)
    correct = torch.zeros(seeds, dtype=torch.long, device=x.device)
    rows = eval_chunk(x)  # the rows train_run's evaluate takes at once: the same sums
    for start in range(0, len(x), rows):
        chunk, target = x[start : start + rows], y[start : start + rows]
        logits = model(chunk.expand(seeds, *chunk.shape))
        losses = eval_losses(logits, target.expand(seeds, -1))
        loss_sum += losses.sum(1).double()
        correct += (logits.argmax(-1) == target).sum(1)
    model.train(was_training)
    return [v / len(x) for v in loss_sum.tolist()], [c / len(x) for c in correct.tolist()]


def _end_epoch(stack: Stack, seat: Seat, metrics: dict[str, float], started: float) -> str | BaseException | None:
    """train_run's epoch end (end_epoch) for one seat, its stopping rules called
    with its own model holding its weights: None to go on, a stop reason, or the
    exception that fails the run."""
    copied = False

    def model_now() -> torch.nn.Module:
        nonlocal copied
        copied = True
        return stack.copy_out(seat)

    try:
        reason = end_epoch(seat.parts, seat.history, metrics, seat.reporter, model_now, started)
    except Exception as exc:
        return exc
    if reason is None and copied:
        stack.copy_in(seat)
    return reason


def _finish(stack: Stack, done: dict[Seat, str | BaseException]) -> None:
    """The outcome of each seat that is done; the stack records them and lets the seats go."""
    stack.leave({seat.index: _conclude(stack, seat, o) if isinstance(o, str) else o for seat, o in done.items()})


def _conclude(stack: Stack, seat: Seat, stop_reason: str) -> Outcome:
    """train_run's ending (finish_run) for one seat, on its own model."""
    began = time.perf_counter()
    try:
        stack.copy_out(seat)
        return finish_run(
            seat.parts, seat.history, stop_reason, lambda: seat.seconds + time.perf_counter() - began, stack.size
        )
    except Exception as exc:
        return exc
