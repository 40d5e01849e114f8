"""Arms that differ only in the learning rate share a stack, each seat stepping
with its own run's learning rate (and schedule): a factor over train.lr with
3 values and 2 seeds trains as one stack of 6, each run as it trains alone."""

from __future__ import annotations

import pytest
from stacking_support import CPU, assert_same_run, make_spec, seeds_of, stacked

from ablate.plugin.manager import build_registry, make_plugin_manager
from ablate.train.training import train_run

REGISTRY = build_registry(make_plugin_manager())


@pytest.mark.parametrize(
    ("optimizer", "recipe"),
    [
        ("adam", ()),
        ("sgd", (("schedule", "cosine", {"warmup_epochs": 1.0}),)),
        ("adam", (("optimizer", "rmsprop", {"momentum": 0.5}), ("regularizer", "l2", {}))),
        ("adam", (("optimizer", "adamw", {"weight_decay": 0.1}),)),
        ("adam", (("regularizer", "weight_decay", {"decay": 0.1}),)),
    ],
)
def test_runs_that_differ_in_lr_share_a_stack_each_with_its_own(optimizer, recipe):
    specs = [
        s
        for lr in (1e-3, 3e-3, 1e-2)
        for s in seeds_of(make_spec(REGISTRY, ("norm", "batchnorm", {}), *recipe, optimizer=optimizer, lr=lr), [0, 1])
    ]
    results = stacked(specs, REGISTRY)
    for spec, result in zip(specs, results, strict=True):
        assert result.stack == 6, result.unstacked
        alone = train_run(spec, REGISTRY, CPU)
        assert_same_run(result, alone, rtol=1e-5)
        assert [h["lr"] for h in result.history] == [h["lr"] for h in alone.history]


def test_a_factor_over_lr_trains_as_one_stack_of_six(tmp_path, run_cli):
    import json

    study = tmp_path / "lr.toml"
    study.write_text(
        '[study]\nname = "lr"\nseeds = 2\n[data]\nname = "digits"\n[model]\nname = "mlp"\nhidden = [16]\n'
        '[train]\nepochs = 2\nbatch_size = 256\n[factors.lr]\nsetting = "train.lr"\nlevels = [1e-3, 3e-3, 1e-2]\n'
    )
    code, _, err = run_cli("run", study, "--out", tmp_path / "out", "--jobs", "1")
    assert code == 0, err
    runs = json.loads((tmp_path / "out" / "results.json").read_text())["runs"]
    assert len(runs) == 6
    import optuna

    from ablate.engine.store import attrs

    storage = f"sqlite:///{(tmp_path / 'out' / 'study.db').resolve()}"
    records = [t.user_attrs[attrs.RESULT] for t in optuna.load_study(study_name="lr", storage=storage).trials]
    assert [r["stacked_with"] for r in records] == [6] * 6
    assert sorted(r["config"]["train"]["lr"] for r in records) == [1e-3, 1e-3, 3e-3, 3e-3, 1e-2, 1e-2]


def test_an_lr_by_weight_decay_grid_under_adam_trains_as_one_stack():
    specs = [
        s
        for lr in (1e-3, 3e-3)
        for decay in (0.0, 0.01, 0.1)
        for s in seeds_of(
            make_spec(REGISTRY, *([("regularizer", "weight_decay", {"decay": decay})] if decay else []), lr=lr),
            [0, 1],
        )
    ]
    results = stacked(specs, REGISTRY)
    for spec, result in zip(specs, results, strict=True):
        assert result.stack == 12, result.unstacked
        assert_same_run(result, train_run(spec, REGISTRY, CPU), rtol=1e-5)


def test_decoupled_decays_under_sgd_share_a_stack_each_seat_its_own():
    """SGD's decoupled decay (SGDW) is the flat optimizer's, per seat: its arms share a stack."""
    specs = [
        s
        for decay in (0.01, 0.1)
        for s in seeds_of(
            make_spec(REGISTRY, ("regularizer", "weight_decay", {"decay": decay}), optimizer="sgd", lr=0.05), [0, 1]
        )
    ]
    from ablate.spec import Execution
    from ablate.train.stacked.grouping import stack_splits

    assert stack_splits(specs, REGISTRY, Execution("cpu")) == [[0, 1, 2, 3]]
    for spec, result in zip(specs, stacked(specs, REGISTRY), strict=True):
        assert result.stack == 4, result.unstacked
        assert_same_run(result, train_run(spec, REGISTRY, CPU), rtol=1e-5)


TORCH_SGD = (
    "import torch\n"
    "from ablate import OptimizerComponent, hookimpl\n"
    "class TorchSgd(OptimizerComponent):\n"
    "    elementwise = True\n"
    "    def make(self, params, lr):\n"
    "        return torch.optim.SGD(params, lr=lr, momentum=0.9)\n"
    "@hookimpl\ndef ablate_register_optimizers(registry):\n    registry.add('torch_sgd', TorchSgd)\n"
)


def test_lrs_on_torchs_own_optimizer_stack_per_arm_decided_when_planned(tmp_path, write_study):
    """torch's own optimizer cannot hold a learning rate per seat: the plan says so,
    and each arm's seeds stack on their own (never a stack that falls apart in training)."""
    from ablate.cli.run_command import stacking_lines
    from ablate.engine.planned import study_arms
    from ablate.spec import Execution
    from ablate.study.config import load_study
    from ablate.train.stacked.grouping import stack_splits

    plugin = tmp_path / "torch_sgd.py"
    plugin.write_text(TORCH_SGD)
    registry = build_registry(make_plugin_manager([plugin]))
    config = load_study(
        write_study(
            '[study]\nname = "lr"\nseeds = 2\n[data]\nname = "digits"\n[model]\nname = "mlp"\nhidden = [16]\n'
            '[train]\nepochs = 2\nbatch_size = 256\noptimizer = "torch_sgd"\n'
            '[factors.lr]\nsetting = "train.lr"\nlevels = [0.01, 0.05]\n'
        ),
        registry,
    )
    lines = stacking_lines(config, registry, study_arms(config, registry))
    assert lines[0] == "stacking: 2 of 2 arms train their 2 seeds as one stacked model"
    separate = [line for line in lines if line.startswith("  in separate stacks: ")]
    assert len(separate) == 1 and "a learning rate per seat needs the flat optimizer" in separate[0]
    specs = [
        s for lr in (0.01, 0.05) for s in seeds_of(make_spec(registry, ("optimizer", "torch_sgd", {}), lr=lr), [0, 1])
    ]
    parts = stack_splits(specs, registry, Execution("cpu"))
    assert parts == [[0, 1], [2, 3]]
    for part in parts:
        results = stacked([specs[i] for i in part], registry)
        assert [(r.stack, r.unstacked) for r in results] == [(2, ""), (2, "")]
