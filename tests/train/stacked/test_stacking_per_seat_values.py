"""Arms that differ only in scalar training values share one stack, each seat with
its own run's values: L1/L2 coefficients, label smoothing, coupled and decoupled
weight decay (SGD too), SGD momentum, clipping thresholds, EMA decay and schedule
parameters. Each run equals its run alone per epoch to 1e-5 relative (the
tolerance of every stacked-vs-alone training test: a stacked layer's forward
rounds differently; the optimizer's step with per-seat values is bit for bit,
test_flat_per_seat.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from stacking_support import CPU, assert_same_run, make_spec, seeds_of, stacked

from ablate.plugin.manager import build_registry, make_plugin_manager
from ablate.spec import Execution
from ablate.train.stacked.grouping import stack_splits
from ablate.train.training import train_run

REGISTRY = build_registry(make_plugin_manager())


def _arm(*components, optimizer="adam", lr=1e-3, epochs=2, **train):
    spec = make_spec(REGISTRY, *components, epochs=epochs, optimizer=optimizer, lr=lr)
    return replace(spec, train={**spec.train, **train})


def _smoothed(decay, eps):
    decayed = [("regularizer", "weight_decay", {"decay": decay})] if decay else []
    return _arm(*decayed, ("regularizer", "label_smoothing", {"eps": eps}))


def _sgd(**params):
    return ("optimizer", "sgd", {"momentum": 0.9, "dampening": 0.0, "nesterov": False, "weight_decay": 0.0, **params})


CASES = {
    "l2 coef": [_arm(("regularizer", "l2", {"coef": c})) for c in (1e-4, 1e-2)],
    "l1 coef": [_arm(("regularizer", "l1", {"coef": c})) for c in (1e-5, 1e-3)],
    "label smoothing": [_arm(("regularizer", "label_smoothing", {"eps": e})) for e in (0.05, 0.3)],
    "decay x smoothing": [_smoothed(d, e) for d in (0.0, 0.1) for e in (0.05, 0.2)],
    "adam coupled decay": [_arm(("optimizer", "adam", {"weight_decay": w})) for w in (0.0, 0.05)],
    "adamw decay": [_arm(("optimizer", "adamw", {"weight_decay": w})) for w in (0.01, 0.2)],
    "sgd momentum x decay": [_arm(_sgd(momentum=m, weight_decay=w), lr=0.05) for m in (0.0, 0.9) for w in (0.0, 5e-3)],
    "sgd nesterov momentum": [_arm(_sgd(momentum=m, nesterov=True), lr=0.05) for m in (0.5, 0.9)],
    "[train] momentum": [_arm(optimizer="sgd", lr=0.05, momentum=m) for m in (0.5, 0.9)],
    "grad_clip max_norm": [_arm(("regularizer", "grad_clip", {"max_norm": c, "by_value": False})) for c in (0.05, 1.0)],
    "grad_clip by value": [_arm(("regularizer", "grad_clip", {"max_norm": c, "by_value": True})) for c in (1e-3, 0.1)],
    "seeds leave the stack": [  # l2 and clipping per seat; the first arm stops after epoch 1, the others go on
        _arm(
            ("regularizer", "l2", {"coef": c}),
            ("regularizer", "grad_clip", {"max_norm": m, "by_value": False}),
            *([("stopping", "max_epochs", {"epochs": 1})] if c == 1e-4 else []),
            epochs=3,
        )
        for c, m in ((1e-4, 0.05), (1e-3, 0.2), (1e-2, 1.0))
    ],
    "ema decay": [_arm(("regularizer", "ema", {"decay": d})) for d in (0.9, 0.99)],
    "schedules": [
        _arm(optimizer="sgd", lr=0.05),
        _arm(("schedule", "step", {"step_size": 1, "gamma": 0.5, "warmup_epochs": 0.0}), optimizer="sgd", lr=0.05),
        _arm(("schedule", "step", {"step_size": 1, "gamma": 0.1, "warmup_epochs": 0.5}), optimizer="sgd", lr=0.05),
        _arm(("schedule", "cosine", {"min_lr": 0.01, "warmup_epochs": 1.0}), optimizer="sgd", lr=0.05),
    ],
}


@pytest.mark.parametrize("name", CASES)
def test_arms_that_differ_only_in_a_value_share_a_stack_each_seat_its_own(name):
    specs = [s for arm in CASES[name] for s in seeds_of(arm, [0, 1])]
    assert stack_splits(specs, REGISTRY, Execution("cpu")) == [list(range(len(specs)))]
    results = stacked(specs, REGISTRY)
    alone = [train_run(spec, REGISTRY, CPU) for spec in specs]
    for result, own in zip(results, alone, strict=True):
        assert result.stack == len(specs), result.unstacked
        assert_same_run(result, own, rtol=1e-5)
        assert [h["lr"] for h in result.history] == [h["lr"] for h in own.history]
    finals = {round(r.metrics["train_loss"], 6) for r in alone[::2]}
    assert len(finals) == len(CASES[name])  # each arm's value changes its numbers: nothing was shared by mistake
