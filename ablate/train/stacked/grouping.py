"""Which runs train together: ``can_stack`` (can an arm's seeds share one model,
and if not, why), ``shared_stack_problem`` (can several arms' seeds share one,
and if not, why) and ``group_runs`` (the groups an executor hands to
``train_group``, sized to fit the device's memory). Arms that differ only in
their stopping rules share a stack (each seed stops by its own rule), and so do
arms that differ only in dropout (each seed drops at its own arm's rate, or not)
or in values a stack holds per seat (learning rate and schedule, weight decays,
momentum, L1/L2 coefficients, label smoothing, clipping threshold, EMA decay)."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar, cast

import numpy as np
import torch

from ablate.plugin.registry import Registry
from ablate.spec import Execution, RunSpec
from ablate.train.build import RunParts, build_run, load_data, pick_device
from ablate.train.stacked.group import Seat, Stack, build_seat, seats_problem
from ablate.train.stacked.training import evaluate_stacked, train_step
from ablate.train.stacked.units import arm_groups
from ablate.train.training import eval_chunk

T = TypeVar("T")
MEMORY_SHARE = 0.5  # of the free memory a stack may plan to use
PARAM_COPIES = 7  # stacked weights, gradients, two moments, the per-seed model, a best-weights copy, slack
SEAT_COPIES = 5  # where arms share a stack: the optimizer's per-seed values, each the size of the weights


def can_stack(spec: RunSpec, registry: Registry) -> bool | str:
    """True when the seeds of this spec's arm can train as one stacked model, else
    a sentence saying why not. Builds two seeds' models on the CPU, stacks them and
    takes one training step and one evaluation on two samples (a layer on the
    generic path that torch.func cannot batch shows here, not in the study);
    leaves every random generator as it found it."""
    with _own_random_state():
        cpu = torch.device("cpu")
        seats = [build_seat(i, spec.with_seed(spec.seed + i), registry, cpu, None) for i in range(2)]
        problem = seats_problem(seats) or _trial_step(seats)
    return True if problem is None else problem


@contextlib.contextmanager
def _own_random_state() -> Iterator[None]:
    """Python's, NumPy's and torch's CPU generators restored on the way out."""
    state, np_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        random.setstate(state)
        np.random.set_state(np_state)


def _trial_step(seats: list[Seat]) -> str | None:
    try:
        stack = Stack(seats)
        x, y = stack.data.x_train[:2], stack.data.y_train[:2]
        train_step(stack, x.expand(2, *x.shape).contiguous(), y.expand(2, *y.shape).contiguous())
        evaluate_stacked(stack.model, x, y, 2)
    except Exception as exc:
        return f"the stacked model failed a trial step: {type(exc).__name__}: {exc}"
    return None


def _built(spec: RunSpec, registry: Registry) -> RunParts:
    with _own_random_state():
        return build_run(spec, registry, torch.device("cpu"))


def group_runs(
    runs: Sequence[T], registry: Registry, execution: Execution, spec_of: Callable[[T], RunSpec] | None = None
) -> list[list[T]]:
    """The runs split into groups for ``train_group``: the runs of one arm (equal
    but for the seed) together when stacking is on and they can stack, in groups
    that fit in memory; every other run alone. Groups keep first-appearance order.
    ``runs`` may be RunSpecs or anything ``spec_of`` maps to one (a planned run)."""
    of = spec_of or cast(Callable[[T], RunSpec], lambda r: r)
    groups: list[list[T]] = []
    for arm in arm_groups(runs, of, registry):
        groups += [[arm[i] for i in part] for part in stack_splits([of(r) for r in arm], registry, execution)]
    return groups


def stack_splits(specs: Sequence[RunSpec], registry: Registry, execution: Execution) -> list[list[int]]:
    """How a unit's runs train (indices into ``specs``): stacked, in chunks that
    fit in memory, when they can; else each arm on its own, or one by one."""
    alone = [[i] for i in range(len(specs))]
    if not execution.may_stack(len(specs)):
        return alone
    arms: dict[str, list[int]] = {}
    for i, spec in enumerate(specs):
        arms.setdefault(spec.with_seed(0).key, []).append(i)
    if len(arms) > 1 and shared_stack_problem([specs[idx[0]] for idx in arms.values()], registry) is not None:
        by_arm = [(idx, stack_splits([specs[i] for i in idx], registry, execution)) for idx in arms.values()]
        return [[idx[i] for i in part] for idx, parts in by_arm for part in parts]
    try:
        stackable = all(can_stack(specs[idx[0]], registry) is True for idx in arms.values())
    except Exception:  # a run that cannot even be built fails alone, with its own error
        return alone
    if not stackable:
        return alone
    size = max_stack(specs[0], registry, execution, per_seat=len(arms) > 1)
    return [list(range(i, min(i + size, len(specs)))) for i in range(0, len(specs), size)]


def shared_stack_problem(arm_specs: Sequence[RunSpec], registry: Registry) -> str | None:
    """Why one seed of each of these arms (one unit: units.stack_key), built, cannot
    share a stack (their networks, per-step hooks, or an optimizer that cannot hold
    their values per seat), or None. Asked when the runs are planned (``ablate
    plan``, the executor's split), so a stack never falls apart while it trains."""
    try:
        with _own_random_state():
            cpu = torch.device("cpu")
            seats = [build_seat(n, spec, registry, cpu, None) for n, spec in enumerate(arm_specs)]
            return seats_problem(seats)
    except Exception as exc:  # a run that cannot even be built fails alone, with its own error
        return f"a run could not be built ({type(exc).__name__}: {exc})"


def max_stack(spec: RunSpec, registry: Registry, execution: Execution, per_seat: bool = False) -> int:
    """How many seeds of this arm fit in one stack on the execution's device
    (``per_seat``: arms share it, whose values the optimizer may hold per seed)."""
    device = pick_device(execution.device)
    per_seed = seed_bytes(spec, registry, PARAM_COPIES + SEAT_COPIES * per_seat)
    return max(1, int(MEMORY_SHARE * free_bytes(device) // per_seed))


def seed_bytes(spec: RunSpec, registry: Registry, copies: int = PARAM_COPIES) -> int:
    """An estimate of the memory one seed adds to a stack: its weights in every
    copy the stack keeps, the activations a training batch keeps for backward, and
    the widest activation of an evaluation chunk (``copies``: of the weights)."""
    parts = _built(spec, registry)
    data = load_data(spec, registry, torch.device("cpu"))
    sizes: list[int] = []
    hooks = [
        m.register_forward_hook(lambda m, i, o: sizes.append(o.numel() if torch.is_tensor(o) else 0))
        for m in parts.model.modules()
        if not list(m.children())
    ]
    parts.model.eval()
    with torch.no_grad():
        parts.model(data.x_train[:2])
    for h in hooks:
        h.remove()
    per_sample = sum(sizes) / 2
    widest = max(sizes, default=0) / 2
    weights = sum(t.numel() for t in [*parts.model.parameters(), *parts.model.buffers()])
    rows = min(len(data.x_train), eval_chunk(data.x_train))
    elements = copies * weights + 3 * per_sample * int(spec.train["batch_size"]) + 2 * widest * rows
    return int(4 * elements) + 1


def free_bytes(device: torch.device) -> int:
    """Free memory on the device (the CPU: available physical memory)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 2**31
