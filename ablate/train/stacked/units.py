"""Which runs may share a stack, decided from their specs alone (no torch, no
model built): the coordinator's units of work. An arm's seeds go together, with
the seeds of the arms that differ from it only in stopping rules or in
components that declare ``shares_stacks`` (dropout); the worker then checks
that the built networks align (stacked_plan.stack_splits)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from ablate.plugin.registry import Registry
from ablate.spec import RunSpec

T = TypeVar("T")


def arm_groups(runs: Sequence[T], spec_of: Callable[[T], RunSpec], registry: Registry) -> list[list[T]]:
    """Runs that may share a stack together (an arm's seeds, with the seeds of arms
    that differ from it only in stopping rules or dropout), in first-appearance
    order. Cheap: the coordinator's units of work; the worker decides how they train."""
    by_key: dict[str, list[T]] = {}
    for run in runs:
        by_key.setdefault(stack_key(spec_of(run), registry), []).append(run)
    return list(by_key.values())


def stack_key(spec: RunSpec, registry: Registry) -> str:
    """What the runs that may share a stack have in common: all but the seed, the
    stopping rules and the components that declare ``shares_stacks`` (dropout)."""
    return spec.stack_key({(c.kind, c.name) for c in spec.components if _shares_stacks(c.kind, c.name, registry)})


def _shares_stacks(kind: str, name: str, registry: Registry) -> bool:
    try:
        factory = registry.get(kind, name).factory
    except Exception:  # not registered here: it stacks with its own arm only
        return False
    return bool(getattr(factory, "shares_stacks", False))
