"""precision = "fp16": the forward under autocast(float16) and torch's GradScaler
around the step (on a CPU too), equal to a hand-written torch loop with GradScaler
bit for bit, skipped steps included (a skipped step is not a divergence); fp16
arms train their seeds alone (one scaler would couple them) and say why."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
import torch.nn.functional as F
from stacking_support import CPU, make_spec, seeds_of, stacked

from ablate.plugin.manager import build_registry, make_plugin_manager
from ablate.train import precision
from ablate.train.build import build_run
from ablate.train.stacked.grouping import can_stack
from ablate.train.training import batch_bounds, train_epochs, train_run

REGISTRY = build_registry(make_plugin_manager())
SCALE = 2.0**22  # high enough that the first steps' gradients overflow fp16 and are skipped


def fp16(spec):
    return dataclasses.replace(spec, train={**spec.train, "precision": "fp16"})


def torch_loop(model, spec, data, clip: float | None, sgd: bool) -> None:
    """The loop torch's AMP recipe writes, on the batches train_run draws."""
    lr = spec.train["lr"]
    optimizer = (
        torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=1e-3)
        if sgd
        else torch.optim.Adam(model.parameters(), lr=lr)
    )
    scaler = torch.amp.GradScaler("cpu", init_scale=SCALE)
    generator = torch.Generator().manual_seed(spec.seed)
    n = len(data.x_train)
    model.train()
    for _ in range(spec.train["epochs"]):
        order = torch.randperm(n, generator=generator)
        for start, end in batch_bounds(n, spec.train["batch_size"]):
            idx = order[start:end]
            with torch.autocast("cpu", dtype=torch.float16):
                loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
            optimizer.zero_grad()
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            scaler.step(optimizer)
            scaler.update()


@pytest.mark.parametrize(("clip", "sgd"), [(None, False), (0.5, False), (None, True)])
def test_fp16_steps_equal_torchs_gradscaler_loop_bit_for_bit(monkeypatch, clip, sgd):
    """Through the flat optimizer (Adam; SGD with Nesterov momentum and weight
    decay), with and without clipping in the before-step hook."""
    monkeypatch.setattr(precision, "INIT_SCALE", SCALE)
    components = [("regularizer", "grad_clip", {"max_norm": clip})] if clip is not None else []
    if sgd:
        components.append(("optimizer", "sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}))
    spec = fp16(make_spec(REGISTRY, *components, epochs=2, batch_size=256, lr=0.05 if sgd else 1e-3))
    parts = build_run(spec, REGISTRY, torch.device("cpu"))
    reference = copy.deepcopy(parts.model)
    history, reason = train_epochs(parts, None, 0.0)
    skipped = [h["skipped_steps"] for h in history]
    assert reason == "max_epochs" and 0 < sum(skipped) < 10  # some steps skipped, not all
    torch_loop(reference, spec, parts.data, clip, sgd)
    for mine, theirs in zip(parts.model.parameters(), reference.parameters(), strict=True):
        assert torch.equal(mine, theirs)


def test_fp16_runs_complete_with_their_own_numbers_and_skipped_steps_are_no_divergence(monkeypatch):
    monkeypatch.setattr(precision, "INIT_SCALE", 2.0**30)  # every step of epoch 1 overflows
    stops = [("stopping", "early_stopping", {}), ("stopping", "divergence", {})]
    spec = make_spec(REGISTRY, ("norm", "batchnorm", {}), *stops, epochs=3, batch_size=256, lr=0.01)
    half, full = train_run(fp16(spec), REGISTRY, CPU), train_run(spec, REGISTRY, CPU)
    assert half.history[0]["skipped_steps"] == 5 and half.history[-1]["skipped_steps"] < 5
    assert half.stop_reason == "max_epochs" and len(half.history) == 3
    assert half.metrics["test_loss"] != full.metrics["test_loss"]
    assert "skipped_steps" not in full.history[0]


def test_fp16_seeds_train_alone_and_say_why():
    specs = seeds_of(fp16(make_spec(REGISTRY, epochs=1, batch_size=256)), [0, 1])
    assert can_stack(specs[0], REGISTRY) == precision.FP16_ALONE
    assert can_stack(seeds_of(make_spec(REGISTRY, epochs=1), [0])[0], REGISTRY) is True
    for result, spec in zip(stacked(specs, REGISTRY), specs, strict=True):
        assert result.stack == 1 and precision.FP16_ALONE in result.unstacked
        alone = train_run(spec, REGISTRY, CPU)
        assert alone.history == result.history and alone.unstacked == precision.FP16_ALONE
