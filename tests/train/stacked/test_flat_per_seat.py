"""The flat optimizer over a stack's (S, ...) parameters with the runs' own weight
decays (coupled and decoupled) and SGD momentum per seed: each seed's slice is, bit
for bit, the step of that seed's run alone (whose flat optimizer is torch's own
class's step, tests/train/stacked/test_stacking_layers.py)."""

from __future__ import annotations

import pytest
import torch
from stacking_support import assert_seats_step_alone

from ablate.train.optimizers import OptimizerRecipe, flat_from_recipe, flat_settings
from ablate.train.stacked.per_seat import hold_per_seat, per_seat_problem

SHAPES = [(3, 7, 5), (3, 7), (3, 2, 7)]
ADAM, ADAMW, SGD, RMSPROP = torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD, torch.optim.RMSprop

CASES = {
    "adam coupled decay": [OptimizerRecipe(ADAM, {"lr": 0.01, "weight_decay": w}) for w in (0.0, 0.01, 0.1)],
    "adam coupled and decoupled": [
        OptimizerRecipe(ADAM, {"lr": 0.01, "weight_decay": 0.05}),
        OptimizerRecipe(ADAMW, {"lr": 0.01, "weight_decay": 0.1}),
        OptimizerRecipe(ADAM, {"lr": 0.01}),
    ],
    "sgd coupled decay and momentum": [
        OptimizerRecipe(SGD, {"lr": 0.1, "momentum": m, "weight_decay": w})
        for m, w in ((0.9, 0.0), (0.5, 5e-4), (0.0, 1e-2))
    ],
    "sgd nesterov momentum": [
        OptimizerRecipe(SGD, {"lr": 0.1, "momentum": m, "nesterov": True}) for m in (0.9, 0.5, 0.99)
    ],
    "sgd dampened momentum": [
        OptimizerRecipe(SGD, {"lr": 0.1, "momentum": m, "dampening": 0.3}) for m in (0.9, 0.5, 0.7)
    ],
    "sgdw decoupled decay": [OptimizerRecipe(SGD, {"lr": 0.1, "momentum": 0.9}, d) for d in (0.0, 0.01, 0.1)],
    "rmsprop coupled decay": [
        OptimizerRecipe(RMSPROP, {"lr": 0.01, "momentum": 0.5, "weight_decay": w}) for w in (0.0, 0.01, 0.1)
    ],
}


@pytest.mark.parametrize("name", CASES)
def test_each_seed_steps_with_its_own_runs_values_bit_for_bit(name):
    recipes = CASES[name]
    lrs = [0.01, 0.03, 0.002]
    assert per_seat_problem(recipes, lrs_differ=True) is None
    torch.manual_seed(0)
    stacked_params = [torch.nn.Parameter(torch.randn(s)) for s in SHAPES]
    alone_params = [[torch.nn.Parameter(p.detach()[i].clone()) for p in stacked_params] for i in range(3)]
    stack = flat_from_recipe(stacked_params, recipes[0])
    hold_per_seat(stack, [flat_settings(r)[1] for r in recipes])
    alones = [flat_from_recipe(ps, r) for ps, r in zip(alone_params, recipes, strict=True)]
    assert_seats_step_alone(stack, stacked_params, alones, alone_params, lrs, 5, name)


def test_a_seed_that_leaves_takes_its_values_with_it():
    """After a seed leaves the stack (select), the others keep their own values."""
    recipes = CASES["sgd coupled decay and momentum"]
    torch.manual_seed(1)
    stacked_params = [torch.nn.Parameter(torch.randn(s)) for s in SHAPES]
    last = [torch.nn.Parameter(p.detach()[2].clone()) for p in stacked_params]
    stack = flat_from_recipe(stacked_params, recipes[0])
    hold_per_seat(stack, [flat_settings(r)[1] for r in recipes])
    alone = flat_from_recipe(last, recipes[2])
    for step in range(4):
        if step == 2:
            stack.select([2])
        grads = [torch.randn(s) for s in SHAPES]
        for p, g in zip(stacked_params, grads, strict=True):
            p.grad.copy_(g if step < 2 else g[2:])
        for p, g in zip(last, grads, strict=True):
            p.grad.copy_(g[2])
        stack.step()
        alone.step()
    for p, q in zip(stacked_params, last, strict=True):
        assert torch.equal(p.detach()[-1], q.detach())


@pytest.mark.parametrize(
    ("recipes", "lrs_differ", "says"),
    [
        ([OptimizerRecipe(ADAM, {"lr": 0.01, "amsgrad": True})] * 2, True, "flat optimizer"),
        ([OptimizerRecipe(ADAM, {"lr": 0.01, "amsgrad": True, "weight_decay": w}) for w in (0, 0.1)], False, "torch"),
        ([OptimizerRecipe(ADAM, {"lr": 0.01, "betas": (b, 0.999)}) for b in (0.9, 0.8)], False, "betas"),
        ([OptimizerRecipe(RMSPROP, {"lr": 0.01, "momentum": m}) for m in (0.0, 0.9)], False, "momentum"),
        ([OptimizerRecipe(SGD, {"lr": 0.1, "momentum": m, "dampening": 0.5}) for m in (0.0, 0.9)], False, "dampen"),
        ([OptimizerRecipe(SGD, {"lr": 0.1}), OptimizerRecipe(ADAM, {"lr": 0.1})], False, "adam and sgd"),
    ],
)
def test_what_a_stack_cannot_hold_per_seat_is_named(recipes, lrs_differ, says):
    problem = per_seat_problem(recipes, lrs_differ)
    assert problem is not None and says in problem


def test_the_same_torch_optimizer_for_every_seed_needs_nothing_per_seat():
    recipes = [OptimizerRecipe(ADAM, {"lr": 0.01, "amsgrad": True})] * 2
    assert per_seat_problem(recipes, lrs_differ=False) is None
