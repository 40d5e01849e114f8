"""Inside a stack each seed keeps its own stopping, divergence and failure, and
anything that cannot stack (a broken stacked form, stacking turned off) trains
alone with the same outcome it would have had."""

from __future__ import annotations

import pytest
import torch
from stacking_support import CPU, alone, assert_same_run, make_spec, plugin_registry, seeds_of, stacked

from ablate.spec import Execution
from ablate.train.build import RunFailed
from ablate.train.stacked import training as stacked_training
from ablate.train.stacked.group import Stack, build_seat
from ablate.train.stacked.training import train_group

CPU_DEVICE = torch.device("cpu")


@pytest.fixture(scope="module")
def preg():
    return plugin_registry()


def test_seeds_stop_early_at_their_own_epochs_and_keep_their_best_weights(registry):
    spec = make_spec(
        registry, ("stopping", "early_stopping", {"patience": 1, "restore_best": True}), epochs=15, lr=0.01
    )
    specs = seeds_of(spec, range(4))
    solo, group = alone(specs, registry), stacked(specs, registry)
    assert len({r.epochs for r in solo}) > 1  # they really stop at different epochs
    assert {r.stop_reason for r in solo} == {"early_stopping"}
    for a, b in zip(solo, group, strict=True):
        assert_same_run(a, b)  # the final metrics are measured on each seed's restored best weights


def test_arms_that_differ_only_in_stopping_rules_stack_together_and_train_their_own_runs(registry):
    """The arms with and without a stopping rule share one stack (one network):
    each seed stops by its own arm's rule and ends with exactly its run alone's numbers."""
    rules = [
        [],
        [("stopping", "early_stopping", {"patience": 1, "restore_best": True})],
        [("stopping", "max_epochs", {"epochs": 4})],
    ]
    specs = [s for rule in rules for s in seeds_of(make_spec(registry, *rule, epochs=10, lr=0.01), range(2))]
    solo, group = alone(specs, registry), stacked(specs, registry)
    assert {r.stop_reason for r in solo} >= {"early_stopping", "max_epochs"}
    for a, b in zip(solo, group, strict=True):
        assert b.stack == 6
        assert_same_run(a, b)


def _outcomes(results):
    return ["ok" if not isinstance(r, BaseException) else f"{type(r).__name__}: {r}" for r in results]


def test_a_diverging_seed_fails_alone_and_the_others_finish(preg):
    spec = make_spec(preg, ("augmentation", "poison_batch", {"p": 0.02}), epochs=3)
    specs = seeds_of(spec, range(6))
    solo, group = alone(specs, preg), stacked(specs, preg)
    assert _outcomes(group) == _outcomes(solo)
    assert "ok" in _outcomes(solo) and any(isinstance(r, RunFailed) and "diverged" in str(r) for r in solo)
    for a, b in zip(solo, group, strict=True):
        if not isinstance(a, BaseException):
            assert_same_run(a, b)


def test_with_the_divergence_rule_a_diverging_seed_stops_on_its_last_healthy_weights(preg):
    spec = make_spec(preg, ("augmentation", "poison_batch", {"p": 0.02}), ("stopping", "divergence", {}), epochs=3)
    specs = seeds_of(spec, range(6))
    solo, group = alone(specs, preg), stacked(specs, preg)
    assert {r.stop_reason for r in solo} == {"divergence", "max_epochs"}
    for a, b in zip(solo, group, strict=True):
        assert_same_run(a, b)


def test_a_seed_whose_component_raises_fails_alone(preg):
    specs = seeds_of(make_spec(preg, ("augmentation", "fail_batch", {"p": 0.02}), epochs=3), range(6))
    solo, group = alone(specs, preg), stacked(specs, preg)
    assert _outcomes(group) == _outcomes(solo)
    assert "ok" in _outcomes(solo) and "ValueError: an unlucky batch" in _outcomes(solo)
    for a, b in zip(solo, group, strict=True):
        if not isinstance(a, BaseException):
            assert b.stack == 6
            assert_same_run(a, b)


def test_each_seed_reports_its_own_epochs_and_an_exception_there_ends_that_seed_only(registry):
    specs = seeds_of(make_spec(registry, epochs=3), range(3))
    seen: dict[int, list[int]] = {0: [], 1: [], 2: []}

    def callback(i):
        def on_epoch(metrics):
            seen[i].append(int(metrics["epoch"]))
            if i == 1 and metrics["epoch"] == 2:
                raise KeyError("pruned")

        return on_epoch

    group = train_group(specs, registry, CPU, on_epoch=[callback(i) for i in range(3)])
    assert seen == {0: [1, 2, 3], 1: [1, 2], 2: [1, 2, 3]}
    assert isinstance(group[1], KeyError)
    for a, b in zip(alone([specs[0], specs[2]], registry), [group[0], group[2]], strict=True):
        assert_same_run(a, b)


def test_a_layer_without_a_stacked_form_takes_the_generic_path(preg):
    spec = make_spec(preg, ("norm", "scalenorm", {}))
    seats = [build_seat(i, s, preg, CPU_DEVICE, None) for i, s in enumerate(seeds_of(spec, range(3)))]
    assert Stack(seats).generic
    specs = seeds_of(spec, range(3))
    for a, b in zip(alone(specs, preg), stacked(specs, preg), strict=True):
        assert b.stack == 3
        assert_same_run(a, b)


def test_a_declared_stacked_form_is_used_instead(preg):
    spec = make_spec(preg, ("norm", "hand_scalenorm", {}))
    seats = [build_seat(i, s, preg, CPU_DEVICE, None) for i, s in enumerate(seeds_of(spec, range(3)))]
    assert not Stack(seats).generic
    specs = seeds_of(spec, range(3))
    for a, b in zip(alone(specs, preg), stacked(specs, preg), strict=True):
        assert_same_run(a, b)


def test_a_stacked_form_that_raises_leaves_every_seed_to_train_alone(preg):
    specs = seeds_of(make_spec(preg, ("norm", "broken_scalenorm", {})), range(3))
    for a, b in zip(alone(specs, preg), stacked(specs, preg), strict=True):
        assert b.stack == 1
        assert b.unstacked.startswith("its stack failed in training (RuntimeError: this stacked form is broken)")
        assert a.unstacked == ""
        assert_same_run(a, b)


def test_runs_left_to_train_alone_mid_study_report_each_epoch_once(preg):
    specs = seeds_of(make_spec(preg, ("norm", "late_broken_scalenorm", {}), epochs=3), range(2))
    seen: dict[int, list[int]] = {0: [], 1: []}
    callbacks = [lambda m, i=i: seen[i].append(int(m["epoch"])) for i in range(2)]
    group = train_group(specs, preg, CPU, on_epoch=callbacks)
    assert seen == {0: [1, 2, 3], 1: [1, 2, 3]}
    for a, b in zip(alone(specs, preg), group, strict=True):
        assert b.stack == 1
        assert b.unstacked.startswith("its stack failed in training (") and b.unstacked.endswith("trained again alone")
        assert_same_run(a, b)


def _raise(*args, **kwargs):
    raise RuntimeError("boom")


@pytest.mark.parametrize(
    "patch, why",
    [
        (("Stack", _raise), "its stack could not be built (RuntimeError: boom)"),
        (("seats_problem", lambda seats: "the seeds disagree"), "could not share a stack: the seeds disagree"),
    ],
)
def test_runs_kept_out_of_their_stack_record_why(registry, monkeypatch, patch, why):
    monkeypatch.setattr(stacked_training, *patch)
    specs = seeds_of(make_spec(registry), range(2))
    for a, b in zip(alone(specs, registry), stacked(specs, registry), strict=True):
        assert (b.stack, b.unstacked) == (1, why)
        assert_same_run(a, b)


@pytest.mark.parametrize("arm", [[], [("norm", "batchnorm", {})], [("norm", "layernorm", {})]])
def test_the_generic_torch_func_path_trains_the_same_runs(registry, arm):
    specs = seeds_of(make_spec(registry, *arm), range(3))
    for a, b in zip(alone(specs, registry), stacked(specs, registry, generic=True), strict=True):
        assert b.stack == 3
        assert_same_run(a, b, rtol=1e-3, accuracy_atol=0.01)


def test_the_generic_path_stacks_arms_apart_where_their_networks_differ(registry):
    """Arms with and without dropout share hand-stacked forms, but vmap runs one
    template: under the generic path each arm's seeds stack on their own."""
    plain = seeds_of(make_spec(registry), range(2))
    dropped = seeds_of(make_spec(registry, ("regularizer", "dropout", {"rate": 0.3})), range(2))
    results = stacked(plain + dropped, registry, generic=True)
    assert [r.stack for r in results] == [2, 2, 2, 2]
    for a, b in zip(alone(plain, registry), results[:2], strict=True):
        assert_same_run(a, b, rtol=1e-3, accuracy_atol=0.01)


@pytest.mark.parametrize(
    "arm", [[("regularizer", "spectral_norm", {})], [("regularizer", "spectral_norm", {}), ("norm", "batchnorm", {})]]
)
def test_parametrized_layers_take_the_generic_path_and_train_the_same_runs(registry, arm):
    specs = seeds_of(make_spec(registry, *arm), range(3))
    for a, b in zip(alone(specs, registry), stacked(specs, registry), strict=True):
        assert b.stack == 3
        assert_same_run(a, b, rtol=1e-3, accuracy_atol=0.01)


def test_stack_off_trains_each_run_alone(registry):
    specs = seeds_of(make_spec(registry, epochs=2), range(2))
    off = Execution("cpu", 1, stack="off")
    for a, b in zip(alone(specs, registry), train_group(specs, registry, off), strict=True):
        assert b.stack == 1
        assert_same_run(a, b, rtol=0.0)


def test_a_group_must_differ_only_in_seed(registry):
    one, other = make_spec(registry), make_spec(registry, ("norm", "batchnorm", {}))
    with pytest.raises(ValueError, match="differ only in seed"):
        train_group([one, other.with_seed(1)], registry, CPU)


def test_a_stacked_result_is_recorded_like_an_unstacked_one(registry):
    specs = seeds_of(make_spec(registry, epochs=2), range(2))
    a, b = alone(specs, registry)[1], stacked(specs, registry)[1]
    assert (b.config, b.sizes, b.device, b.threads) == (a.config, a.sizes, a.device, a.threads)
    assert set(b.metrics) == set(a.metrics) and b.seconds > 0
