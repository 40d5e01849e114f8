"""Arms that differ only in dropout (present or not, or its rate) share one stack:
their networks align layer by layer, each seed drops at its own arm's rate (a
seed without dropout passes through untouched, drawing nothing), and every run
keeps the numbers it has in a stack of its own arm."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from stacking_support import CPU, alone, assert_same_run, make_spec, seeds_of, stacked

from ablate.engine.runner import shared_out, stacking_grouper
from ablate.train.stacked.align import align, network_problem
from ablate.train.stacked.forms import SeedStreams
from ablate.train.stacked.model import select_seeds, stack_models
from ablate.train.stacked.units import stack_key

DROPOUT = ("regularizer", "dropout", {"rate": 0.3})
ES = ("stopping", "early_stopping", {"patience": 1, "restore_best": True})


def mlp(dropout: float | None, norm: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(4, 8)]
    layers += [nn.BatchNorm1d(8)] if norm else []
    layers += [nn.ReLU()]
    layers += [nn.Dropout(dropout)] if dropout is not None else []
    return nn.Sequential(*layers, nn.Linear(8, 3))


def test_networks_without_some_dropout_layers_align_with_none_in_their_place():
    nets = [mlp(0.3), mlp(None), mlp(0.5)]
    columns = align(nets)
    assert columns is not None
    assert [[type(m).__name__ if m is not None else None for m in c] for c in columns] == [
        ["Linear"] * 3,
        ["ReLU"] * 3,
        ["Dropout", None, "Dropout"],
        ["Linear"] * 3,
    ]
    assert network_problem(nets) is None
    assert network_problem([mlp(0.3), mlp(0.3, norm=True)]) == "the arms build different networks"
    assert network_problem([mlp(None), nn.Sequential(nn.Linear(4, 9), nn.ReLU(), nn.Linear(9, 3))]) is not None


def streams(n: int) -> SeedStreams:
    return SeedStreams([torch.Generator().manual_seed(100 + i) for i in range(n)])


def test_each_seed_drops_at_its_own_rate_and_a_seed_without_dropout_passes_through():
    layers = [nn.Dropout(0.5), None, nn.Dropout(0.2)]
    model, _ = stack_models([nn.Sequential(*([m] if m else [])) for m in layers], streams(3))
    x = torch.ones(3, 2000, 10)
    out = model(x)
    assert torch.equal(out[1], x[1])  # rate 0: untouched
    for seat, rate in ((0, 0.5), (2, 0.2)):
        kept = out[seat] != 0
        assert abs(1 - kept.float().mean().item() - rate) < 0.02
        assert torch.allclose(out[seat][kept], torch.tensor(1 / (1 - rate)))
    # seat 2's masks are the ones it draws in a stack of its own arm (its stream, its rate)
    own, _ = stack_models([nn.Dropout(0.2)], SeedStreams([torch.Generator().manual_seed(102)]))
    assert torch.equal(own(x[2:3])[0], out[2])


def test_the_rates_follow_the_seeds_as_seeds_leave_the_stack():
    layers = [nn.Dropout(0.5), nn.Dropout(0.5), None]
    model, ctx = stack_models([nn.Sequential(*([m] if m else [])) for m in layers], streams(3))
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    select_seeds(model, optimizer, [2, 0])
    ctx.streams.select([2, 0])
    x = torch.ones(2, 2000, 10)
    out = model(x)
    assert torch.equal(out[0], x[0])  # the seat without dropout, now first
    assert 0.45 < (out[1] == 0).float().mean().item() < 0.55


def test_arms_that_differ_only_in_dropout_are_one_unit_of_work(registry):
    plain, with_dropout = make_spec(registry), make_spec(registry, DROPOUT)
    other_rate = make_spec(registry, ("regularizer", "dropout", {"rate": 0.5}), ES)
    assert stack_key(plain, registry) == stack_key(with_dropout, registry) == stack_key(other_rate, registry)
    assert stack_key(plain, registry) != stack_key(make_spec(registry, ("regularizer", "l1", {})), registry)
    assert stack_key(plain, registry) != stack_key(make_spec(registry, ("norm", "batchnorm", {})), registry)
    # alpha dropout's offsets depend on its rate: its arms stack one rate each
    assert stack_key(plain, registry) != stack_key(make_spec(registry, ("regularizer", "alpha_dropout", {})), registry)
    assert network_problem(
        [mlp(None), nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.AlphaDropout(0.2), nn.Linear(8, 3))]
    )


def test_units_are_halved_until_every_worker_has_two(registry):
    specs = [make_spec(registry), make_spec(registry, DROPOUT)]
    runs = [SimpleNamespace(spec=s.with_seed(seed)) for s in specs for seed in range(3)]
    assert [len(u) for u in stacking_grouper(registry, CPU)(runs)] == [6]  # one worker: one stack of both arms
    halves = stacking_grouper(registry, CPU, workers=2)(runs)
    # halved, the cheaper half halved again, to two units a worker: the dropout arm's three
    # seeds and three single plain runs; then the dropout stack (a dropout run costs two
    # plain ones) halved once more, so the two workers' shares are 12 and 15, not 18 and 9
    assert [len(u) for u in halves] == [2, 1, 1, 1, 1]  # longest first
    assert sorted(r.spec.key for u in halves for r in u) == sorted(r.spec.key for r in runs)
    assert shared_out([runs[:1]], 4) == [runs[:1]]  # a single run is never split


@pytest.mark.parametrize("other", [[], [("regularizer", "dropout", {"rate": 0.5}), ES]])
def test_a_stack_of_arms_with_and_without_dropout_trains_each_run_as_its_own_arm_would(registry, other):
    """Every run ends as it does in a stack of its own arm (with dropout: the same
    draws at its own rate); a run without dropout also as it does alone."""
    first = seeds_of(make_spec(registry, *other, epochs=4, lr=0.01), range(2))
    dropping = seeds_of(make_spec(registry, DROPOUT, epochs=4, lr=0.01), range(2))
    mixed = stacked(first + dropping, registry)
    assert all(r.stack == 4 for r in mixed)
    for a, b in zip(stacked(first, registry) + stacked(dropping, registry), mixed, strict=True):
        assert_same_run(a, b)
    if not other:
        for a, b in zip(alone(first, registry), mixed, strict=False):
            assert_same_run(a, b)


def test_units_that_would_leave_a_worker_idle_are_halved_until_the_work_shares_out(registry):
    """Five equal stacks on two workers would be three for one, two for the other."""
    from ablate.engine.runner import evened, unit_cost

    spec = make_spec(registry)
    runs = [SimpleNamespace(spec=spec.with_seed(seed)) for seed in range(30)]
    units = [runs[i : i + 6] for i in range(0, 30, 6)]
    even = evened(units, 2)
    assert sorted(len(u) for u in even) == [3, 3, 6, 6, 6, 6]  # one stack halved, the rest kept whole
    loads = [0.0, 0.0]
    for cost in sorted((unit_cost(u) for u in even), reverse=True):
        loads[loads.index(min(loads))] += cost
    assert max(loads) == min(loads)
    assert evened(units[:4], 2) == units[:4]  # four on two: even already
    assert evened(units, 1) == units  # one worker: nothing to share out
    assert sorted(r.spec.key for u in even for r in u) == sorted(r.spec.key for r in runs)
