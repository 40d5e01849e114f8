"""Helpers for the stacking tests: tiny real runs on digits, trained alone and stacked."""

from __future__ import annotations

import math
from pathlib import Path

from ablate.plugin.manager import build_registry, make_plugin_manager
from ablate.spec import ComponentSpec, Execution, RunSpec
from ablate.train.stacked.training import train_group
from ablate.train.training import RunResult, train_run

PLUGIN = Path(__file__).parent / "fixtures" / "stacking_plugin.py"
CPU = Execution("cpu", 1)


def plugin_registry():
    """The built-ins plus the stacking test plugin's components."""
    return build_registry(make_plugin_manager([PLUGIN]))


def make_spec(
    registry,
    *components,
    seed=0,
    model="mlp",
    epochs=3,
    optimizer="adam",
    lr=1e-3,
    batch_size=64,
    image=False,
    **model_params,
) -> RunSpec:
    """A run on digits; components are (kind, name, params) with params filled in."""
    resolve = registry.resolve_params
    model_params = {"hidden": [32, 32]} if model == "mlp" and not model_params else model_params
    data = ComponentSpec("dataset", "digits", resolve("dataset", "digits", {"image": image}, "data"))
    train = {"epochs": epochs, "batch_size": batch_size, "optimizer": optimizer, "lr": lr, "momentum": 0.9}
    return RunSpec(
        data=data,
        split_seed=0,
        model=ComponentSpec("model", model, resolve("model", model, model_params, "model")),
        train=train,
        seed=seed,
        components=tuple(ComponentSpec(k, n, resolve(k, n, p, n)) for k, n, p in components),
    )


def seeds_of(spec: RunSpec, seeds) -> list[RunSpec]:
    return [spec.with_seed(s) for s in seeds]


def alone(specs, registry):
    """Each run trained by itself (the reference); a failed run gives its exception."""
    out = []
    for spec in specs:
        try:
            out.append(train_run(spec, registry, CPU))
        except Exception as exc:
            out.append(exc)
    return out


def stacked(specs, registry, **kw):
    return train_group(specs, registry, CPU, **kw)


def relative(a: float, b: float) -> float:
    if math.isnan(a) and math.isnan(b):
        return 0.0
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def assert_same_run(a: RunResult, b: RunResult, rtol: float = 1e-4, accuracy_atol: float = 1e-9) -> None:
    """The same per-epoch losses (train, validation, running) and final losses to
    rtol, the same accuracies to accuracy_atol, the same epochs and stop reason."""
    assert (a.epochs, a.stop_reason) == (b.epochs, b.stop_reason)
    assert [list(h) for h in a.history] == [list(h) for h in b.history]  # same keys, same order
    for ha, hb in zip(a.history, b.history, strict=True):
        for key in ("train_loss", "val_loss", "running_loss"):
            assert relative(ha[key], hb[key]) <= rtol, (key, ha["epoch"], ha[key], hb[key])
        for key in ("train_accuracy", "val_accuracy", "running_accuracy"):
            assert abs(ha[key] - hb[key]) <= accuracy_atol, (key, ha["epoch"], ha[key], hb[key])
    assert set(a.metrics) == set(b.metrics)
    for key, value in a.metrics.items():
        losses = abs(a.metrics["test_loss"]) + abs(a.metrics["train_loss"])
        scale = losses if key == "loss_gap" else abs(value)
        tolerance = accuracy_atol if "accuracy" in key or key == "gap" else rtol * max(scale, 1e-2)
        assert abs(value - b.metrics[key]) <= tolerance, (key, value, b.metrics[key])


def assert_seats_step_alone(stack, stacked_params, alones, alone_params, lrs, steps, label=None) -> None:
    """Step a stack's optimizer and each seed's own on the same random gradients, the
    learning rates growing each step: each seed's slice equals its own run's bit for bit."""
    import torch

    for step in range(steps):
        stack.set_lr([lr * (step + 1) for lr in lrs])
        grads = [torch.randn(p.shape) for p in stacked_params]
        for p, g in zip(stacked_params, grads, strict=True):
            p.grad.copy_(g)
        stack.step()
        for i, (opt, ps) in enumerate(zip(alones, alone_params, strict=True)):
            opt.set_lr(lrs[i] * (step + 1))
            for p, g in zip(ps, grads, strict=True):
                p.grad.copy_(g[i])
            opt.step()
            for p, q in zip(stacked_params, ps, strict=True):
                assert torch.equal(p.detach()[i], q.detach()), (label, step, i)
