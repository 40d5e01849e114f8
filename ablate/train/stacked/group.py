"""A group of runs while it trains stacked: each run's seat (its own parts,
generators, history and time) and the stack they share (one model, one optimizer,
the per-step hooks), which shrinks as runs stop."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ablate.plugin.registry import Registry
from ablate.spec import RunSpec, canonical_json
from ablate.train.build import RunParts, build_run
from ablate.train.optimizers import FlatOptimizer, Optimizer, OptimizerRecipe, flat_settings, recipe_of, set_lr
from ablate.train.precision import stack_problem
from ablate.train.stacked.align import network_problem
from ablate.train.stacked.components import STEP_HOOKS, StepHook, component_problem, step_hooks
from ablate.train.stacked.forms import SeedStreams
from ablate.train.stacked.kept import change_problem
from ablate.train.stacked.model import copy_in, copy_out, select_seeds, stack_models, uses_generic
from ablate.train.stacked.per_seat import hold_per_seat, per_seat_problem
from ablate.train.training import OnEpoch, RunResult, lr_plan

STEP_HOOK_NAMES = (*STEP_HOOKS, "ablate_transform_batch")

Outcome = RunResult | BaseException  # a run's result, or the exception that failed it


@dataclass(eq=False)  # a seat is itself: compared and hashed by identity
class Seat:
    """One run of the group; ``index`` is its place in the caller's list (its
    outcome's place), the one name a seat goes by."""

    index: int
    parts: RunParts
    generator: torch.Generator  # batch order and augmentation draws, seeded as train_epochs seeds it
    stream: torch.Generator  # its random layers' draws, as its unstacked run would make them
    on_epoch: OnEpoch | None
    history: list[dict[str, float]] = field(default_factory=list)
    reported: int = 0  # the last epoch its on_epoch saw
    seconds: float = 0.0

    @property
    def reporter(self) -> OnEpoch | None:
        """Its on_epoch, remembering the last epoch reported (a run trained again
        alone does not report those twice)."""
        if self.on_epoch is None:
            return None
        callback = self.on_epoch

        def report(metrics: dict[str, float]) -> None:
            self.reported = int(metrics["epoch"])
            callback(metrics)

        return report


def default_generator(device: torch.device) -> torch.Generator:
    """A copy of the device's default generator as it stands now."""
    generator = torch.Generator(device=device)
    state = torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()
    generator.set_state(state)
    return generator


def build_seat(index: int, spec: RunSpec, registry: Registry, device: torch.device, on_epoch: OnEpoch | None) -> Seat:
    """The run's parts built exactly as train_run builds them, and its generators."""
    started = time.perf_counter()
    parts = build_run(spec, registry, device)
    order = torch.Generator(device=device).manual_seed(spec.seed)
    seat = Seat(index, parts, order, default_generator(device), on_epoch)
    seat.seconds = time.perf_counter() - started
    return seat


def seats_problem(seats: Sequence[Seat]) -> str | None:
    """Why these built runs cannot share a stack, or None. Runs of different arms
    (which differ in stopping rules or dropout only) must also build networks that
    align (stacked_align) and call the same per-step hooks."""
    first = seats[0].parts
    precision = stack_problem(first.spec)
    if precision is not None:
        return precision
    optimizer = first.recipe.get("optimizer")
    if optimizer is not None and not getattr(optimizer, "elementwise", False):
        return (
            f"optimizer {type(optimizer).__name__} does not declare elementwise = True "
            "(a step that mixes elements would mix the seeds)"
        )
    changed = change_problem([s.parts.model for s in seats])
    if changed is not None:
        return changed
    problem = _optimizer_problem(seats)
    if problem is not None:
        return problem
    if len({s.parts.spec.with_seed(0).key for s in seats}) > 1:
        problem = network_problem([s.parts.model for s in seats])
        if problem is not None:
            return problem
        if any(_step_plugins(s.parts) != _step_plugins(first) for s in seats):
            return "the arms' components act on different training steps"
    one_per_arm = {s.parts.spec.with_seed(0).key: s for s in seats}.values()
    return next((p for p in (component_problem(s.parts.hooks) for s in one_per_arm) if p is not None), None)


def _optimizer_problem(seats: Sequence[Seat]) -> str | None:
    """Why one optimizer cannot step these runs each as it steps alone (their
    learning rates, schedules, decays and momenta may differ: the flat optimizer
    holds them per seat), or None."""
    try:
        recipes = [_recipe(s.parts) for s in seats]
    except ValueError as exc:  # a wrong option: each run fails alone, with this error
        return str(exc)
    if recipes[0] is None and any(s.parts.options != seats[0].parts.options for s in seats):
        return "the components gave the seeds different optimizer options"
    return per_seat_problem(recipes, len({lr_key(s.parts) for s in seats}) > 1)


def _recipe(parts: RunParts) -> OptimizerRecipe | None:
    return recipe_of(parts.spec.train, parts.recipe.get("optimizer"), parts.options)


def lr_key(parts: RunParts) -> str:
    """What decides a run's learning rate at every step: [train] lr and its schedule."""
    schedule = parts.spec.recipe("schedule")
    return canonical_json([parts.spec.train["lr"], None if schedule is None else [schedule.name, schedule.params]])


def _step_plugins(parts: RunParts) -> dict[str, list[str]]:
    return {h: [i.plugin_name for i in getattr(parts.hooks, h).get_hookimpls()] for h in STEP_HOOK_NAMES}


def _flat_hp(parts: RunParts) -> dict[str, Any]:
    """A run's flat optimizer settings (its recipe's: the stack's optimizer is flat)."""
    recipe = _recipe(parts)
    settings = None if recipe is None else flat_settings(recipe)
    if settings is None:
        raise ValueError("the stack's optimizer is flat and a seat's is not")
    return settings[1]


class Stack:
    """The stacked model, its optimizer and per-step hooks, the seats still training
    (in stack order), and the outcomes of the seats that left it. Per-seed lists
    made when the stack was built (the context's weight pairs, hooks without a
    stacked form) stay in build order; ``built`` maps a seat's index to it."""

    def __init__(self, seats: Sequence[Seat], generic: bool = False):
        self.seats = list(seats)
        self.built = {seat.index: n for n, seat in enumerate(self.seats)}
        self.outcomes: dict[int, Outcome] = {}
        first = self.seats[0].parts
        self.spec, self.data, self.device, self.size = first.spec, first.data, first.device, len(self.seats)
        self.model, self.ctx = stack_models(
            [s.parts.model for s in self.seats], SeedStreams([s.stream for s in self.seats]), generic
        )
        self.optimizer: Optimizer
        self.optimizer, self.pre_step = first.make_optimizer(self.model)
        self.plan = lr_plan(first)
        self.plans = {seat.index: lr_plan(seat.parts) for seat in self.seats}  # each seat's own learning rates
        self.per_seat = len({lr_key(seat.parts) for seat in self.seats}) > 1
        self.steered = any(plan.steer is not None for plan in self.plans.values())  # ablate_learning_rate
        if isinstance(self.optimizer, FlatOptimizer):
            hold_per_seat(self.optimizer, [_flat_hp(seat.parts) for seat in self.seats])
        elif self.per_seat:  # seats_problem refuses this when the stack is planned
            raise ValueError("a learning rate per seat needs the flat optimizer")
        relays = [s.parts.hooks for s in self.seats]
        self.penalties = step_hooks(relays, self.ctx, "ablate_loss_penalty")
        self.before: list[StepHook] = step_hooks(relays, self.ctx, "ablate_before_step")
        self.after: list[StepHook] = step_hooks(relays, self.ctx, "ablate_after_step")
        self.transform = first.has("ablate_transform_batch")
        self.generic = uses_generic(self.model)

    def apply_lr(self, step: int) -> None:
        """Each seat's learning rate of this step (one for all where they share it)."""
        if self.per_seat:
            set_lr(self.optimizer, [self.plans[seat.index].at(step) for seat in self.seats])
        elif self.steered:  # a component's rates: one for all where the seats' agree
            rates = [self.plans[seat.index].at(step) for seat in self.seats]
            set_lr(self.optimizer, rates[0] if len(set(rates)) == 1 else rates)
        else:
            self.plan.apply(self.optimizer, step)

    def leave(self, outcomes: Mapping[int, Outcome]) -> list[int]:
        """Record the outcomes of these seats (by index) and take them out of the
        stack; return the stack positions of the seats kept."""
        self.outcomes.update(outcomes)
        keep = [p for p, seat in enumerate(self.seats) if seat.index not in outcomes]
        if len(keep) < len(self.seats):
            select_seeds(self.model, self.optimizer, keep)  # the optimizer keeps the kept seats' values
            self.ctx.select(keep)
            self.seats = [self.seats[p] for p in keep]
        return keep

    def copy_out(self, seat: Seat) -> nn.Module:
        """The seat's own model, holding its current weights from the stack."""
        copy_out(self.ctx, self.seats.index(seat), self.built[seat.index])
        return seat.parts.model

    def copy_in(self, seat: Seat) -> None:
        """The seat's own model's weights back into the stack."""
        copy_in(self.ctx, self.seats.index(seat), self.built[seat.index])
