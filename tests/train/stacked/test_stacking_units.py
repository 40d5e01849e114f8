"""Which arms the coordinator puts in one unit of work (``stack_key``, from specs
alone): those that differ only in values a stack holds per seat, and no others."""

from __future__ import annotations

from dataclasses import replace

import pytest
from stacking_support import make_spec

from ablate.plugin.manager import build_registry, make_plugin_manager
from ablate.train.stacked.units import stack_key

REGISTRY = build_registry(make_plugin_manager())


def _key(*components, **train):
    spec = make_spec(REGISTRY, *components, optimizer=train.pop("optimizer", "adam"), lr=train.pop("lr", 1e-3))
    return stack_key(replace(spec, train={**spec.train, **train}), REGISTRY)


def _sgd(**params):
    return ("optimizer", "sgd", {"momentum": 0.9, "dampening": 0.0, "nesterov": False, "weight_decay": 0.0, **params})


SAME = {
    "lr": (_key(lr=1e-3), _key(lr=1e-2)),
    "[train] momentum": (_key(optimizer="sgd", momentum=0.5), _key(optimizer="sgd", momentum=0.9)),
    "l2 coef": (_key(("regularizer", "l2", {"coef": 1e-4})), _key(("regularizer", "l2", {"coef": 1e-2}))),
    "smoothing eps": (
        _key(("regularizer", "label_smoothing", {"eps": 0.1})),
        _key(("regularizer", "label_smoothing", {"eps": 0.2})),
    ),
    "sgd momentum, decay": (_key(_sgd(momentum=0.5)), _key(_sgd(momentum=0.9, weight_decay=5e-4))),
    "schedule or none": (
        _key(("schedule", "cosine", {"min_lr": 0.0, "warmup_epochs": 1.0})),
        _key(),
    ),
    "decoupled decay or none": (_key(("regularizer", "weight_decay", {"decay": 0.1})), _key()),
}
APART = {
    "l2 biases": (
        _key(("regularizer", "l2", {"coef": 1e-4, "include_biases": True})),
        _key(("regularizer", "l2", {"coef": 1e-4, "include_biases": False})),
    ),
    "l2 or none": (_key(("regularizer", "l2", {"coef": 1e-4})), _key()),
    "sgd nesterov": (_key(_sgd(nesterov=True)), _key(_sgd())),
    "clip by value": (
        _key(("regularizer", "grad_clip", {"max_norm": 1.0, "by_value": True})),
        _key(("regularizer", "grad_clip", {"max_norm": 1.0, "by_value": False})),
    ),
    "batch size": (_key(batch_size=32), _key(batch_size=64)),
}


@pytest.mark.parametrize("name", SAME)
def test_arms_that_differ_only_in_per_seat_values_share_a_unit(name):
    a, b = SAME[name]
    assert a == b


@pytest.mark.parametrize("name", APART)
def test_arms_that_differ_in_anything_else_do_not(name):
    a, b = APART[name]
    assert a != b
