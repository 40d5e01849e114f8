"""Which runs may share a stack, decided from their specs alone (no torch, no
model built): the coordinator's units of work. An arm's seeds go together, with
the seeds of the arms that differ from it only in stopping rules, in components
that declare ``shares_stacks`` (dropout, decoupled weight decay), in the
parameters a component declares ``per_seat`` (L1/L2 coefficients, label
smoothing, clipping threshold, EMA decay, optimizer decays and momentum), in
their schedules or in the settings a stack holds per seat ([train] lr and
momentum); the worker then checks that the built runs can share one
(grouping.stack_splits)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from ablate.plugin.registry import Registry
from ablate.spec import ComponentSpec, RunSpec

T = TypeVar("T")
SEAT_KINDS = frozenset({"schedule"})  # a schedule only gives each seat's learning rate: held per seat


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
    stopping rules, the schedule, the components that declare ``shares_stacks``
    (dropout), the parameters components declare ``per_seat`` and the settings a
    stack holds per seat."""
    held = tuple(_without_per_seat(c, registry) for c in spec.components)
    varying = {(c.kind, c.name) for c in spec.components if c.kind in SEAT_KINDS or _shares_stacks(c, registry)}
    return replace(spec, components=held).stack_key(varying)


def _without_per_seat(component: ComponentSpec, registry: Registry) -> ComponentSpec:
    per_seat = _attribute(component, registry, "per_seat", ())
    if not per_seat:
        return component
    return replace(component, params={k: v for k, v in component.params.items() if k not in per_seat})


def _shares_stacks(component: ComponentSpec, registry: Registry) -> bool:
    return bool(_attribute(component, registry, "shares_stacks", False))


def _attribute(component: ComponentSpec, registry: Registry, name: str, default: Any) -> Any:
    try:
        factory = registry.get(component.kind, component.name).factory
    except Exception:  # not registered here: it stacks with its own arm only
        return default
    return getattr(factory, name, default)
