"""Which arms stack, why the others do not, and how runs are grouped for a device."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from stacking_support import CPU, make_spec, plugin_registry

from ablate.engine.planned import study_arms
from ablate.plugin import hookcheck
from ablate.spec import Execution
from ablate.study.config import load_study
from ablate.study.design import run_spec
from ablate.train.stacked import components as stacked_components
from ablate.train.stacked import grouping as stacked_plan
from ablate.train.stacked.grouping import can_stack, group_runs, seed_bytes

QUICKSTART = "studies/quickstart.toml"


@pytest.fixture(scope="module")
def preg():
    return plugin_registry()


def test_every_quickstart_arm_stacks(registry):
    config = load_study(QUICKSTART, registry)
    arms = study_arms(config, registry)
    assert [can_stack(run_spec(config, arm, 0), registry) for arm in arms] == [True] * len(arms)


def test_an_arm_that_cannot_stack_says_which_component_and_why(preg):
    reason = can_stack(make_spec(preg, ("regularizer", "center_penalty", {})), preg)
    words = "regularizer 'center_penalty' implements a loss penalty with no stacked form"
    assert isinstance(reason, str) and words in reason and "docs/stacking.md" in reason


def test_every_trial_hook_has_a_rule_for_how_it_runs_in_a_stack():
    """A hook added to the hookspecs must be given one (stacked_components) before arms using it stack."""
    rules = stacked_components
    assert set(hookcheck.TRIAL) <= rules.BUILD_HOOKS | rules.PER_SEED_HOOKS | set(rules.STEP_HOOKS)


def test_third_party_layers_stack_with_or_without_a_declared_form(preg):
    for norm in ("scalenorm", "hand_scalenorm"):
        assert can_stack(make_spec(preg, ("norm", norm, {})), preg) is True


def test_a_stacked_form_that_fails_is_found_by_a_trial_step(preg):
    reason = can_stack(make_spec(preg, ("norm", "broken_scalenorm", {})), preg)
    assert reason == "the stacked model failed a trial step: RuntimeError: this stacked form is broken"


def test_can_stack_leaves_the_random_generators_as_they_were(registry):
    torch.manual_seed(5), random.seed(5), np.random.seed(5)
    before = torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy()
    can_stack(make_spec(registry, seed=123), registry)
    assert torch.equal(torch.get_rng_state(), before[0]) and random.getstate() == before[1]
    assert (np.random.get_state()[1] == before[2]).all()


def test_runs_group_by_arm_in_order_and_the_unstackable_ones_train_alone(preg):
    plain, bn, penalty = (
        make_spec(preg, *c) for c in ([], [("norm", "batchnorm", {})], [("regularizer", "center_penalty", {})])
    )
    specs = [
        plain.with_seed(0),
        bn.with_seed(0),
        plain.with_seed(1),
        penalty.with_seed(0),
        penalty.with_seed(1),
        bn.with_seed(1),
        plain.with_seed(2),
    ]
    groups = group_runs(specs, preg, CPU)
    assert [s.key for s in groups[0]] == [plain.with_seed(seed).key for seed in range(3)]
    assert [len(g) for g in groups] == [3, 2, 1, 1]
    assert [len(g) for g in group_runs(specs, preg, Execution("cpu", 1, stack="off"))] == [1] * 7


def test_groups_are_cut_to_what_fits_in_memory(registry, monkeypatch):
    spec = make_spec(registry)
    per_seed = seed_bytes(spec, registry)
    weights = sum(
        p.numel()
        for p in torch.nn.Sequential(
            torch.nn.Linear(64, 32), torch.nn.Linear(32, 32), torch.nn.Linear(32, 10)
        ).parameters()
    )
    assert 4 * weights < per_seed < 50_000_000  # at least the weights, and not absurd
    room = int(2.5 * per_seed / stacked_plan.MEMORY_SHARE)  # two and a half seeds' worth
    monkeypatch.setattr(stacked_plan, "free_bytes", lambda device: room)
    groups = group_runs([spec.with_seed(s) for s in range(5)], registry, CPU)
    assert [len(g) for g in groups] == [2, 2, 1]


def test_arms_sharing_a_stack_count_the_optimizers_values_per_seed(registry, monkeypatch):
    """Where arms share a stack, each seed may add SEAT_COPIES weight-sized tensors
    (its values per element in the flat optimizer): chunks are cut by that estimate."""
    spec = make_spec(registry, hidden=[256, 256])  # weights large next to activations
    held = stacked_plan.PARAM_COPIES + stacked_plan.SEAT_COPIES
    assert seed_bytes(spec, registry, held) > seed_bytes(spec, registry)
    room = int(2.5 * seed_bytes(spec, registry, held) / stacked_plan.MEMORY_SHARE)
    monkeypatch.setattr(stacked_plan, "free_bytes", lambda device: room)
    specs = [make_spec(registry, lr=lr, hidden=[256, 256]).with_seed(s) for lr in (1e-3, 1e-2) for s in range(3)]
    assert [len(g) for g in group_runs(specs, registry, CPU)] == [2, 2, 2]
    one_arm = [spec.with_seed(s) for s in range(6)]  # no per-seat values: more seeds fit
    assert [len(g) for g in group_runs(one_arm, registry, CPU)] == [3, 3]


def test_anything_that_carries_a_spec_can_be_grouped(registry):
    spec = make_spec(registry)
    planned = [(f"run {s}", spec.with_seed(s)) for s in range(3)]
    assert group_runs(planned, registry, CPU, spec_of=lambda run: run[1]) == [planned]


ES = ("stopping", "early_stopping", {"patience": 2})


def test_arms_that_differ_only_in_stopping_rules_share_a_unit_and_a_stack(registry):
    plain, stopping, bn_stopping = (make_spec(registry, *c) for c in ([], [ES], [("norm", "batchnorm", {}), ES]))
    specs = [plain.with_seed(0), stopping.with_seed(0), bn_stopping.with_seed(0)]
    specs += [plain.with_seed(1), stopping.with_seed(1)]
    groups = group_runs(specs, registry, CPU)
    assert [[specs.index(s) for s in g] for g in groups] == [[0, 1, 3, 4], [2]]


def test_arms_that_cannot_share_a_stack_split_into_their_own(registry, monkeypatch):
    plain, stopping = make_spec(registry), make_spec(registry, ES)
    specs = [plain.with_seed(0), stopping.with_seed(0), plain.with_seed(1), stopping.with_seed(1)]
    assert stacked_plan.stack_splits(specs, registry, CPU) == [[0, 1, 2, 3]]
    monkeypatch.setattr(stacked_plan, "shared_stack_problem", lambda specs, registry: "they disagree")
    assert stacked_plan.stack_splits(specs, registry, CPU) == [[0, 2], [1, 3]]  # each arm's seeds still stack


def test_seats_of_arms_with_different_networks_are_refused(registry):
    from ablate.train.stacked.group import build_seat, seats_problem

    a, b = make_spec(registry, ES), make_spec(registry, ("norm", "batchnorm", {}))
    seats = [build_seat(i, s, registry, torch.device("cpu"), None) for i, s in enumerate([a, b])]
    assert seats_problem(seats) == "the arms build different networks"


def test_the_coordinator_hands_out_the_longest_units_first(registry):
    """Longest first leaves the shortest unit for last: less of a tail with --jobs N."""
    from types import SimpleNamespace

    from ablate.engine.runner import stacking_grouper

    plain = make_spec(registry)
    bn_l1 = make_spec(registry, ("norm", "batchnorm", {}), ("regularizer", "l1", {}))
    runs = [SimpleNamespace(spec=s.with_seed(seed)) for s in (plain, bn_l1) for seed in range(2)]
    units = stacking_grouper(registry, CPU)(runs)
    assert [[r.spec.key for r in u] for u in units] == [[r.spec.key for r in runs[2:]], [r.spec.key for r in runs[:2]]]
    assert stacking_grouper(registry, Execution("cpu", 1, stack="off"))(runs) == [[r] for r in runs]


def _plan_lines(write_study, text: str, registry) -> list[str]:
    from ablate.cli.run_command import stacking_lines

    config = load_study(write_study(text), registry)
    return stacking_lines(config, registry, study_arms(config, registry))


def test_ablate_plan_says_which_arms_stack_and_which_share_a_stack(write_study, tiny, registry):
    assert _plan_lines(write_study, tiny, registry) == [
        "stacking: 4 of 4 arms train their 2 seeds as one stacked model",
        "  arms that differ only in stopping rules, dropout or values a stack holds per seat "
        "(learning rate, schedule, weight decay, momentum, ...) share a stack: 2 stacks",
    ]
    off = tiny.replace("batch_size = 128", 'batch_size = 128\nstack = "off"')
    assert _plan_lines(write_study, off, registry) == ["stacking: off"]
    one_seed = tiny.replace("seeds = 2", "seeds = 1")
    assert _plan_lines(write_study, one_seed, registry) == ["stacking: each run trains alone"]


def test_ablate_plan_names_an_arm_that_cannot_stack_and_why(write_study, tiny, preg):
    text = tiny.replace('levels = ["none", "dropout"]', 'levels = ["none", "center_penalty"]')
    text = text.replace("dropout = { rate = 0.2 }", "").replace("[factors.dropout]", "[factors.penalty]")
    lines = _plan_lines(write_study, text, preg)
    assert lines[0] == "stacking: 2 of 4 arms train their 2 seeds as one stacked model"
    alone = [line for line in lines if line.startswith("  not stacked: ")]
    assert len(alone) == 2 and all(
        "'stacking_plugin.py:center_penalty' implements a loss penalty" in line for line in alone
    )


SEARCH = """
[design]
kind = "search"
sampler = "random"
budget = 3
confirm_top = {top}
"""


def test_ablate_plan_says_a_search_stacks_only_its_confirmation(write_study, tiny, registry):
    """A sampled arm trains one seed, alone; the confirmed arms train their seeds stacked
    (their records say ``stacked_with``; checked end to end in test_designs)."""
    confirmed = _plan_lines(write_study, tiny + SEARCH.format(top=2), registry)
    assert len(confirmed) == 1 and "search's runs train alone" in confirmed[0]
    assert "confirmation (top 2) trains each confirmed arm's 2 seeds as one stacked model" in confirmed[0]
    unconfirmed = _plan_lines(write_study, tiny + SEARCH.format(top=0), registry)
    assert unconfirmed == ["stacking: each run trains alone (a sampled arm trains one seed)"]


def test_the_plan_estimate_is_calibrated_on_units_of_work_as_they_will_train(write_study, tiny, registry):
    """Stacked arms are timed stacked: timing runs alone put the quickstart at 28 s
    against the 14-16 s `ablate run` takes (the estimate is now 13 s)."""
    from ablate.engine.estimate import STARTUP_SECONDS, estimate_seconds

    config = load_study(write_study(tiny), registry)
    seconds, note = estimate_seconds(config, registry, study_arms(config, registry))
    assert seconds > STARTUP_SECONDS
    assert "trainings of 2 units of work, 8 runs, stacked as they will train" in note  # 2 stacks of 4
    off = load_study(write_study(tiny.replace("batch_size = 128", 'batch_size = 128\nstack = "off"')), registry)
    _, note = estimate_seconds(off, registry, study_arms(off, registry))
    assert "trainings of 3 units of work, 3 runs:" in note  # runs alone: the first, middle and last
