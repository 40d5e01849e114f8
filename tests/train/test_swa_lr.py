"""swa's own learning rate: from start_epoch the rate anneals to swa_lr and holds
it, as torch.optim.swa_utils.SWALR does (made at the start of that epoch on the
schedule's rate, stepped at each epoch's end); the rates the optimizer steps with,
alone and stacked, against SWALR's."""

from __future__ import annotations

import pytest
import torch
from stacking_support import CPU, assert_same_run, make_spec, seeds_of, stacked

from ablate.plugin.manager import build_registry, make_plugin_manager
from ablate.train.build import build_run
from ablate.train.optimizers import FlatOptimizer
from ablate.train.training import lr_plan, train_run

REGISTRY = build_registry(make_plugin_manager())
EPOCHS, START, SWA_LR = 6, 3, 0.02


def spec_with(strategy: str, anneal: int, seed: int = 0):
    swa = {"start_epoch": START, "swa_lr": SWA_LR, "anneal_epochs": anneal, "anneal_strategy": strategy}
    schedule = ("schedule", "cosine", {"warmup_epochs": 1.0})
    train = {"epochs": EPOCHS, "batch_size": 256, "lr": 0.1, "optimizer": "sgd", "seed": seed}
    return make_spec(REGISTRY, schedule, ("regularizer", "swa", swa), **train)


def swalr_rates(spec, strategy: str, anneal: int) -> list[float]:
    """Each step's rate: the run's schedule, then torch's SWALR from START on."""
    from torch.optim.swa_utils import SWALR

    plan = lr_plan(build_run(spec, REGISTRY, torch.device("cpu")))
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    rates, swa = [], None
    for epoch in range(1, EPOCHS + 1):
        first = (epoch - 1) * plan.steps_per_epoch
        if epoch == START:
            optimizer.param_groups[0]["lr"] = plan.scheduled(first)
            swa = SWALR(optimizer, swa_lr=SWA_LR, anneal_epochs=anneal, anneal_strategy=strategy)
        for step in range(first, first + plan.steps_per_epoch):
            rates.append(plan.scheduled(step) if swa is None else optimizer.param_groups[0]["lr"])
            optimizer.step()  # no gradient: nothing moves (SWALR wants a step before its own)
        if swa is not None:
            swa.step()
    return rates


@pytest.fixture
def stepped(monkeypatch):
    """The rates the flat optimizer steps with (each seed's, in a stack)."""
    seen: list[list[float]] = []
    original = FlatOptimizer.step

    def step(self):
        seen.append(list(self.seed_lrs) if self.seed_lrs is not None else [self.hp["lr"]])
        original(self)

    monkeypatch.setattr(FlatOptimizer, "step", step)
    return seen


@pytest.mark.parametrize(("strategy", "anneal"), [("cos", 2), ("linear", 3), ("cos", 0)])
def test_swa_lr_is_swalrs_per_step_alone_and_stacked(stepped, strategy, anneal):
    expected = swalr_rates(spec_with(strategy, anneal), strategy, anneal)
    specs = [spec_with(strategy, anneal, seed) for seed in (0, 1)]
    alone = train_run(specs[0], REGISTRY, CPU)
    assert [r[0] for r in stepped] == pytest.approx(expected, rel=1e-12, abs=0)
    assert alone.history[-1]["lr"] == pytest.approx(SWA_LR, rel=1e-12)
    assert expected[(START - 1) * 5 - 1] != expected[(START - 1) * 5]  # the schedule moved, then SWA took over
    stepped.clear()
    together = stacked(specs, REGISTRY)
    assert together[0].stack == 2
    per_seat = [r * 2 if len(r) == 1 else r for r in stepped]  # one rate for both seeds, or one each
    for seat in (0, 1):
        assert [r[seat] for r in per_seat] == pytest.approx(expected, rel=1e-12, abs=0)
    assert_same_run(together[0], alone, rtol=1e-5)


def test_swa_lr_zero_keeps_the_schedule_and_the_runs_numbers():
    spec = seeds_of(make_spec(REGISTRY, ("regularizer", "swa", {"start_epoch": 2}), epochs=3, lr=0.01), [0])[0]
    plain = make_spec(REGISTRY, epochs=3, lr=0.01)
    assert [h["lr"] for h in train_run(spec, REGISTRY, CPU).history] == [0.01] * 3
    assert train_run(spec, REGISTRY, CPU).history == train_run(plain, REGISTRY, CPU).history


HALVING = """
from ablate import hookimpl

class Halve:
    @hookimpl
    def ablate_learning_rate(self, state, scheduled):
        return scheduled(state.step) / 2 if state.epoch >= 2 else None

@hookimpl
def ablate_register_regularizers(registry):
    registry.add("halve", Halve)
"""


def test_a_plugins_ablate_learning_rate_sets_each_steps_rate_alone_and_stacked(tmp_path):
    (tmp_path / "halve.py").write_text(HALVING)
    registry = build_registry(make_plugin_manager([tmp_path / "halve.py"]))
    specs = seeds_of(make_spec(registry, ("regularizer", "halve", {}), epochs=3, lr=0.01), [0, 1])
    alone = [train_run(spec, registry, CPU) for spec in specs]
    assert [h["lr"] for h in alone[0].history] == [0.01, 0.005, 0.005]
    for together, reference in zip(stacked(specs, registry), alone, strict=True):
        assert together.stack == 2
        assert_same_run(together, reference, rtol=1e-5)
