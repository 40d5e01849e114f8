"""What the optimizer of a stack holds per seat: each seed's run's learning rate,
weight decays (coupled and decoupled) and SGD momentum where the runs differ in
them (``hold_per_seat``), and why a stack's runs cannot share one optimizer
(``per_seat_problem``, asked when the stack is planned, not while it trains)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ablate.train.optimizers import SEAT_VALUES, FlatOptimizer, OptimizerRecipe, flat_settings, seat_values


def hold_per_seat(optimizer: FlatOptimizer, hps: Sequence[dict[str, Any]]) -> None:
    """Give each seed of a stack its own run's SEAT_VALUES (``hps``: each run's flat
    settings, in stack order) where they differ; learning rates are the schedule's,
    set every step."""
    values = [seat_values(optimizer.kind, hp) for hp in hps]
    for name in SEAT_VALUES[optimizer.kind]:
        column = [v[name] for v in values]
        if name != "lr" and len(set(column)) > 1:
            optimizer.set_seat_values(name, column)


def per_seat_problem(recipes: Sequence[OptimizerRecipe | None], lrs_differ: bool) -> str | None:
    """Why one optimizer cannot step a stack of runs with these recipes (each
    run's own; None: a component's ``make``), each seed as its run alone, or None."""
    settings = [None if r is None else flat_settings(r) for r in recipes]
    if any(s is None for s in settings):
        own = _own_name(next(r for r, s in zip(recipes, settings, strict=True) if s is None))
        if lrs_differ:
            return f"a learning rate per seat needs the flat optimizer, and these runs' optimizer is {own}"
        same = all(_same_but_lr(r, recipes[0]) for r in recipes)
        return None if same else f"the seeds' optimizer settings differ, and these runs' optimizer is {own}"
    kinds = {kind for kind, _ in settings}  # type: ignore[misc]  # none is None here
    if len(kinds) > 1:
        return f"the seeds' optimizers differ ({' and '.join(sorted(kinds))})"
    kind = kinds.pop()
    held = {"lr", "weight_decay", "decoupled_weight_decay", *(("momentum",) if kind == "sgd" else ())}
    hps = [hp for _, hp in settings]  # type: ignore[misc]
    for key in hps[0]:
        if key not in held and len({repr(hp.get(key)) for hp in hps}) > 1:
            return f"the seeds' runs differ in the optimizer's {key}, which a stack does not hold per seat"
    momenta = [seat_values(kind, hp).get("momentum", 0.0) for hp in hps]
    if len(set(momenta)) > 1 and 0.0 in momenta and hps[0]["dampening"] != 0:
        return "a momentum of 0 next to momentum with dampening in one stack (its seed would be dampened)"
    return None


def _own_name(recipe: OptimizerRecipe | None) -> str:
    if recipe is None:
        return "made by its component (make), not the flat one"
    options = sorted(set(recipe.kwargs) - {"lr"})
    return f"torch's own {recipe.kind.__name__} (with {', '.join(options) or 'its defaults'})"


def _same_but_lr(a: OptimizerRecipe | None, b: OptimizerRecipe | None) -> bool:
    """Equal recipes, the learning rate aside (the schedule sets it)."""
    if a is None or b is None:
        return a is b
    return (a.kind, _without_lr(a), a.decoupled) == (b.kind, _without_lr(b), b.decoupled)


def _without_lr(recipe: OptimizerRecipe) -> dict[str, Any]:
    return {k: v for k, v in recipe.kwargs.items() if k != "lr"}
