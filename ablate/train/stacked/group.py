"""A group of runs while it trains stacked: each run's seat (its own parts,
generators, history and time) and the stack they share (one model, one optimizer,
the per-step hooks), which shrinks as runs stop."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ablate.plugin.registry import Registry
from ablate.spec import RunSpec
from ablate.train.build import RunParts, build_run
from ablate.train.optimizers import Optimizer, make_optimizer
from ablate.train.stacked.align import network_problem
from ablate.train.stacked.components import STEP_HOOKS, StepHook, component_problem, step_hooks
from ablate.train.stacked.forms import SeedStreams
from ablate.train.stacked.model import copy_in, copy_out, select_seeds, stack_models, uses_generic
from ablate.train.training import RunResult

STEP_HOOK_NAMES = (*STEP_HOOKS, "ablate_transform_batch")
OnEpoch = Callable[[dict[str, float]], None]
Outcome = RunResult | BaseException  # a run's result, or the exception that failed it


@dataclass
class Seat:
    """One run of the group. ``index`` is its place in the caller's list, ``slot``
    its place when the stack was built (the per-seed lists are in that order)."""

    index: int
    parts: RunParts
    generator: torch.Generator  # batch order and augmentation draws, seeded as train_epochs seeds it
    stream: torch.Generator  # its random layers' draws, as its unstacked run would make them
    on_epoch: OnEpoch | None
    slot: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    reported: int = 0  # the last epoch its on_epoch saw
    seconds: float = 0.0

    @property
    def stops(self) -> bool:
        return self.parts.has("ablate_epoch_end")


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
    if any(s.parts.options != first.options for s in seats):
        return "the components gave the seeds different optimizer options"
    if len({s.parts.spec.with_seed(0).key for s in seats}) > 1:
        problem = network_problem([s.parts.model for s in seats])
        if problem is not None:
            return problem
        if any(_step_plugins(s.parts) != _step_plugins(first) for s in seats):
            return "the arms' components act on different training steps"
    one_per_arm = {s.parts.spec.with_seed(0).key: s for s in seats}.values()
    return next((p for p in (component_problem(s.parts.hooks) for s in one_per_arm) if p is not None), None)


def _step_plugins(parts: RunParts) -> dict[str, list[str]]:
    return {h: [i.plugin_name for i in getattr(parts.hooks, h).get_hookimpls()] for h in STEP_HOOK_NAMES}


class Stack:
    """The stacked model, its optimizer and per-step hooks, and the seats still training, in stack order."""

    def __init__(self, seats: Sequence[Seat], generic: bool = False):
        self.seats = list(seats)
        for slot, seat in enumerate(self.seats):
            seat.slot = slot
        first = self.seats[0].parts
        self.spec, self.data, self.device, self.size = first.spec, first.data, first.device, len(self.seats)
        self.model, self.ctx = stack_models(
            [s.parts.model for s in self.seats], SeedStreams([s.stream for s in self.seats]), generic
        )
        self.optimizer: Optimizer
        self.optimizer, self.pre_step = make_optimizer(self.model, first.spec.train, first.options)
        relays = [s.parts.hooks for s in self.seats]
        self.penalties = step_hooks(relays, self.ctx, "ablate_loss_penalty")
        self.after: list[StepHook] = step_hooks(relays, self.ctx, "ablate_after_step")
        self.transform = first.has("ablate_transform_batch")
        self.generic = uses_generic(self.model)

    def drop(self, positions: set[int]) -> list[int]:
        """Take the seats at these stack positions out; return the positions kept."""
        keep = [i for i in range(len(self.seats)) if i not in positions]
        if positions:
            select_seeds(self.model, self.optimizer, keep)
            self.ctx.streams.select(keep)
            self.seats = [self.seats[i] for i in keep]
        return keep

    def copy_out(self, position: int) -> nn.Module:
        """The seat's own model, holding its current weights from the stack."""
        seat = self.seats[position]
        copy_out(self.ctx, position, seat.slot)
        return seat.parts.model

    def copy_in(self, position: int) -> None:
        copy_in(self.ctx, position, self.seats[position].slot)
