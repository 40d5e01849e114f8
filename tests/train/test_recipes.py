"""Optimizers and schedules as components: each built-in optimizer's steps equal
torch's own class bit for bit (the flat optimizer, as runs and stacks use it),
each schedule's per-step learning rate equals torch.optim.lr_scheduler's, the
[train] shorthand keeps old runs' identity, and a scheduled run records its lr."""

from __future__ import annotations

import json

import pytest
import torch
from stacking_support import CPU, assert_same_run, assert_seats_step_alone, make_spec, seeds_of, stacked
from support import make

from ablate.plugin.manager import build_registry, make_plugin_manager
from ablate.spec import ComponentSpec
from ablate.train.optimizers import FlatOptimizer, make_component_optimizer, set_lr
from ablate.train.training import train_run

OPTIMIZERS = [
    ("sgd", {"momentum": 0.0}),
    ("sgd", {"momentum": 0.9, "nesterov": True}),
    ("sgd", {"momentum": 0.8, "dampening": 0.3, "weight_decay": 0.01}),
    ("adam", {}),
    ("adam", {"beta1": 0.8, "weight_decay": 0.05}),
    ("adamw", {}),
    ("rmsprop", {}),
    ("rmsprop", {"momentum": 0.9, "centered": True, "weight_decay": 0.01}),
]


@pytest.fixture(scope="module")
def registry():
    return build_registry(make_plugin_manager())


def _net(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3))


@pytest.mark.parametrize(("name", "params"), OPTIMIZERS)
def test_each_optimizer_steps_as_torchs_own_class_bit_for_bit(registry, name, params):
    """Same gradients, a learning rate that changes every step (a schedule's):
    the flat optimizer's weights equal torch's after every step."""
    component = make(registry, "optimizer", name, **params)
    ours, theirs = _net(0), _net(0)
    flat, _ = make_component_optimizer(ours, component, 0.05, {})
    assert isinstance(flat, FlatOptimizer)
    reference = getattr(torch.optim, component.torch_class)(theirs.parameters(), lr=0.05, **component.settings())
    x = torch.randn(16, 5, generator=torch.Generator().manual_seed(1))
    for step in range(6):
        lr = 0.05 * (step + 1) / 6
        set_lr(flat, lr)
        for group in reference.param_groups:
            group["lr"] = lr
        for model, opt in ((ours, flat), (theirs, reference)):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
        for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
            assert torch.equal(a, b), (name, params, step)


def _torch_lrs(scheduler_of, warmup: int, total: int, base: float) -> list[float]:
    """torch's per-step learning rates: LambdaLR's linear warmup over ``warmup``
    steps, then ``scheduler_of(optimizer)`` over the remaining steps."""
    lrs = []
    param = torch.nn.Parameter(torch.zeros(1))
    if warmup:
        opt = torch.optim.SGD([param], lr=base)
        warm = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / warmup)
        for _ in range(warmup):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            warm.step()
    opt = torch.optim.SGD([param], lr=base)
    main = scheduler_of(opt, total - warmup)
    for _ in range(total - warmup):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        main.step()
    return lrs


SPE, EPOCHS, BASE = 7, 6, 0.1
SCHEDULES = [
    ("constant", {}, lambda o, t: torch.optim.lr_scheduler.LambdaLR(o, lambda s: 1.0)),
    ("step", {"step_size": 2, "gamma": 0.5}, None),  # StepLR per epoch: expanded below
    ("cosine", {"min_lr": 0.01}, lambda o, t: torch.optim.lr_scheduler.CosineAnnealingLR(o, t - 1, 0.01)),
    (
        "onecycle",
        {},
        lambda o, t: torch.optim.lr_scheduler.OneCycleLR(o, BASE, total_steps=t, cycle_momentum=False),
    ),
]


@pytest.mark.parametrize("warmup_epochs", [0.0, 1.0])
@pytest.mark.parametrize(("name", "params", "scheduler_of"), SCHEDULES)
def test_each_schedule_gives_torchs_learning_rate_at_every_step(registry, name, params, scheduler_of, warmup_epochs):
    schedule = make(registry, "schedule", name, warmup_epochs=warmup_epochs, **params)
    total, warmup = SPE * EPOCHS, int(warmup_epochs * SPE)
    ours = [schedule.lr(s, BASE, SPE, total) for s in range(total)]
    if name == "step":  # StepLR is stepped once per epoch; each of its lrs holds for an epoch's steps
        param = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([param], lr=BASE)
        per_epoch = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        epochs = []
        for _ in range(EPOCHS):
            epochs.append(opt.param_groups[0]["lr"])
            opt.step()
            per_epoch.step()
        main = [epochs[s // SPE] for s in range(total - warmup)]
        theirs = _torch_lrs(lambda o, t: torch.optim.lr_scheduler.LambdaLR(o, lambda s: 1.0), warmup, total, BASE)
        theirs = theirs[:warmup] + main
    else:
        theirs = _torch_lrs(scheduler_of, warmup, total, BASE)
    assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-15)


def test_the_train_shorthand_keeps_old_runs_identity(tmp_path, registry):
    """adam or sgd by name, no schedule: no recipe component, no new [train] key,
    so the run keys of every existing study stay what they were."""
    from ablate.study.config import load_study
    from ablate.study.design import build_arms, run_spec

    for optimizer in ("adam", "sgd"):
        path = tmp_path / f"{optimizer}.toml"
        path.write_text(
            f'[study]\nname = "s"\nseeds = 1\n[data]\nname = "digits"\n[train]\noptimizer = "{optimizer}"\n'
            '[factors.norm]\nkind = "norm"\nlevels = ["none", "batchnorm"]\n'
        )
        config = load_study(path, registry)
        spec = run_spec(config, build_arms(config, registry)[0], 0)
        assert set(spec.train) == {"epochs", "batch_size", "optimizer", "lr", "momentum"}
        assert not [c for c in spec.components if c.kind in ("optimizer", "schedule")]


COSINE = """
[study]
name = "cosine"
seeds = 2
[data]
name = "digits"
[model]
name = "mlp"
hidden = [16]
[train]
epochs = 4
batch_size = 256
optimizer = "sgd"
lr = 0.1
schedule = { name = "cosine", warmup_epochs = 1 }
[factors.norm]
kind = "norm"
levels = ["none"]
"""


def test_a_cosine_study_records_lr_rising_through_warmup_and_ending_at_its_floor(tmp_path, run_cli):
    study = tmp_path / "cosine.toml"
    study.write_text(COSINE)
    code, _, err = run_cli("run", study, "--out", tmp_path / "out")
    assert code == 0, err
    runs = json.loads((tmp_path / "out" / "results.json").read_text())["runs"]
    assert len(runs) == 2
    for run in runs:
        lrs = [h["lr"] for h in run["history"]]
        assert lrs[0] == pytest.approx(0.1)  # the warmup's last step reaches lr
        assert lrs[-1] == 0.0  # cosine's floor (min_lr = 0) at the last step
        assert lrs[1] > lrs[2] > lrs[3]
        assert run["config"]["components"][-1]["name"] == "cosine"


def test_a_wrong_optimizer_param_is_an_exit_2_error_naming_the_valid_keys(tmp_path, run_cli):
    study = tmp_path / "bad.toml"
    study.write_text(COSINE.replace('optimizer = "sgd"', 'optimizer = { name = "sgd", betas = 0.9 }'))
    code, _, err = run_cli("plan", study, "--no-calibrate")
    assert code == 2
    assert "optimizer 'sgd' has no parameter 'betas'" in err
    assert "train.optimizer.betas" in err and "momentum, dampening, nesterov, weight_decay" in err
    assert "Traceback" not in err


def test_plugins_lists_the_optimizer_and_schedule_kinds(run_cli):
    code, out, _ = run_cli("plugins")
    assert code == 0
    for name in ("sgd", "adamw", "rmsprop", "cosine", "onecycle", "step"):
        assert name in out
    assert "optimizer" in out and "schedule" in out


@pytest.mark.parametrize(
    "recipe",
    [
        (("optimizer", "sgd", {"momentum": 0.9, "nesterov": True}), ("schedule", "cosine", {"warmup_epochs": 1.0})),
        (("optimizer", "adamw", {}), ("schedule", "onecycle", {})),
        (("optimizer", "rmsprop", {"momentum": 0.5}), ("schedule", "step", {"step_size": 1, "gamma": 0.5})),
    ],
)
def test_a_scheduled_recipe_trains_the_same_stacked_and_alone(registry, recipe):
    specs = seeds_of(make_spec(registry, *recipe, epochs=3, lr=0.05), [0, 1])
    together = stacked(specs, registry)
    for spec, result in zip(specs, together, strict=True):
        assert result.stack == 2
        assert_same_run(result, train_run(spec, registry, CPU), rtol=1e-5)
        assert [h["lr"] for h in result.history] == [h["lr"] for h in train_run(spec, registry, CPU).history]


def test_an_optimizer_not_declared_elementwise_keeps_its_arm_alone(tmp_path):
    plugin = tmp_path / "lion.py"
    plugin.write_text(
        "import torch\nfrom ablate import OptimizerComponent, hookimpl\n"
        "class Plain(OptimizerComponent):\n"
        "    def make(self, params, lr):\n"
        "        return torch.optim.SGD(params, lr=lr)\n"
        "@hookimpl\ndef ablate_register_optimizers(registry):\n    registry.add('plain_sgd', Plain)\n"
    )
    registry = build_registry(make_plugin_manager([plugin]))
    specs = seeds_of(make_spec(registry, ("optimizer", "plain_sgd", {}), epochs=2), [0, 1])
    results = stacked(specs, registry)
    assert all(r.stack == 1 and "elementwise" in r.unstacked for r in results)
    assert specs[0].recipe("optimizer") == ComponentSpec("optimizer", "plain_sgd", {})


def test_a_third_party_schedule_sets_each_steps_lr_stacked_and_alone(tmp_path):
    """The docs' example schedule, registered through ablate_register_schedules."""
    plugin = tmp_path / "expo.py"
    plugin.write_text(
        "from ablate import Param, ScheduleComponent, hookimpl\n"
        "class Exponential(ScheduleComponent):\n"
        "    def __init__(self, gamma, warmup_epochs):\n"
        "        super().__init__(warmup_epochs)\n"
        "        self.gamma = gamma\n"
        "    def main(self, step, base_lr, steps_per_epoch, total_steps):\n"
        "        return base_lr * self.gamma ** (step / steps_per_epoch)\n"
        "@hookimpl\ndef ablate_register_schedules(registry):\n"
        "    registry.add('exponential', Exponential, params={'gamma': Param(0.9, low=0.0, high=1.0),"
        " 'warmup_epochs': Param(0.0, low=0.0)})\n"
    )
    registry = build_registry(make_plugin_manager([plugin]))
    specs = seeds_of(make_spec(registry, ("schedule", "exponential", {"gamma": 0.5}), epochs=3, lr=0.01), [0, 1])
    together = stacked(specs, registry)
    alone = train_run(specs[0], registry, CPU)
    assert together[0].stack == 2
    assert_same_run(together[0], alone, rtol=1e-5)
    # the last step of epoch e is step e * spe - 1: lr = 0.01 * 0.5 ** ((e * spe - 1) / spe)
    spe = -(-1077 // 64)  # 1,077 training samples of digits in batches of 64
    assert [h["lr"] for h in alone.history] == pytest.approx([0.01 * 0.5 ** ((e * spe - 1) / spe) for e in (1, 2, 3)])


@pytest.mark.parametrize(("name", "params"), OPTIMIZERS)
def test_a_learning_rate_per_seed_steps_each_seed_as_its_own_run(registry, name, params):
    """The flat optimizer over stacked (S, ...) parameters with one learning rate per
    seed gives each seed's slice, bit for bit, the step of that seed alone."""
    component = make(registry, "optimizer", name, **params)
    lrs = [0.01, 0.03, 0.002]
    torch.manual_seed(0)
    shapes = [(3, 7, 5), (3, 7), (3, 2, 7)]
    stacked_params = [torch.nn.Parameter(torch.randn(s)) for s in shapes]
    alone_params = [[torch.nn.Parameter(p.detach()[i].clone()) for p in stacked_params] for i in range(3)]
    stack = FlatOptimizer(stacked_params, component.flat, _hyper(component, 0.01))
    alones = [FlatOptimizer(ps, component.flat, _hyper(component, lr)) for ps, lr in zip(alone_params, lrs)]
    assert_seats_step_alone(stack, stacked_params, alones, alone_params, lrs, 4, name)


def _hyper(component, lr, options=None):
    from ablate.train.optimizers import component_recipe, flat_from_recipe

    recipe = component_recipe(component, lr, options or {})
    return flat_from_recipe([torch.nn.Parameter(torch.zeros(1))], recipe).hp


def test_a_decoupled_weight_decay_per_seed_steps_each_seed_as_its_own_run(registry):
    """Adam with a decay per seed (0: none) and a learning rate per seed: each seed's
    slice, bit for bit, is its own run's Adam (no decay) or AdamW (its decay)."""
    adam = make(registry, "optimizer", "adam")
    lrs, decays = [0.01, 0.03, 0.002], [0.0, 0.01, 0.1]
    torch.manual_seed(0)
    shapes = [(3, 7, 5), (3, 7)]
    stacked_params = [torch.nn.Parameter(torch.randn(s)) for s in shapes]
    alone_params = [[torch.nn.Parameter(p.detach()[i].clone()) for p in stacked_params] for i in range(3)]
    options = [{"weight_decay": d, "decoupled_weight_decay": True} if d else {} for d in decays]
    stack = FlatOptimizer(stacked_params, "adam", _hyper(adam, lrs[0]))
    stack.set_decoupled_decays(decays)
    alones = [
        FlatOptimizer(ps, "adam", _hyper(adam, lr, o)) for ps, lr, o in zip(alone_params, lrs, options, strict=True)
    ]
    for step in range(4):
        stack.set_lr(lrs)
        grads = [torch.randn(s) for s in shapes]
        for p, g in zip(stacked_params, grads, strict=True):
            p.grad.copy_(g)
        stack.step()
        for i, (opt, ps) in enumerate(zip(alones, alone_params, strict=True)):
            for p, g in zip(ps, grads, strict=True):
                p.grad.copy_(g[i])
            opt.step()
            for p, q in zip(stacked_params, ps, strict=True):
                assert torch.equal(p.detach()[i], q.detach()), (step, i)
