"""One run: (study, arm, seed) -> RunResult with per-epoch history.

Data lives on the device as tensors and batches are ``randperm`` index slices:
on small data this is several times faster than a per-row DataLoader.
"""

from __future__ import annotations

import copy
import json
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from ablate.components import Batch, DataSplits, EpochState
from ablate.config import StudyConfig
from ablate.design import Arm
from ablate.manager import trial_manager
from ablate.registry import Registry

EVAL_CHUNK = 8192


class RunFailed(Exception):
    """A run that could not finish (diverged, a component raised); recorded with its reason."""


@dataclass
class RunResult:
    metrics: dict[str, float]
    history: list[dict[str, float]]
    epochs: int
    stop_reason: str
    seconds: float
    config: dict[str, Any] = field(default_factory=dict)


def pick_device(wanted: str) -> torch.device:
    """'auto' takes CUDA when present, else the CPU."""
    if wanted == "cuda" or (wanted == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def set_threads(threads: int) -> None:
    """Small models are dominated by thread overhead: one thread per process is fastest."""
    if threads > 0 and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


_DATA_CACHE: dict[str, DataSplits] = {}


def load_data(config: StudyConfig, registry: Registry, settings: dict[str, Any],
              device: torch.device) -> DataSplits:
    """The study's data splits on the device, cached per process."""
    params = dict(config.data.params)
    params.update({k.split(".", 1)[1]: v for k, v in settings.items() if k.startswith("data.")})
    key = json.dumps([config.data.name, params, config.split_seed, str(device)], sort_keys=True, default=str)
    if key not in _DATA_CACHE:
        dataset = registry.create("dataset", config.data.name, params)
        _DATA_CACHE[key] = dataset.load(config.split_seed).to(device)
    return _DATA_CACHE[key]


def _resolved(config: StudyConfig, arm: Arm) -> tuple[dict[str, Any], dict[str, Any]]:
    model = dict(config.model.params)
    train = dict(config.train)
    for key, value in arm.settings.items():
        section, name = key.split(".", 1)
        if section == "model":
            model[name] = value
        elif section == "train":
            train[name] = value
    return model, train


def _merge_options(results: list[dict[str, Any] | None]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for options in results:
        for k, v in (options or {}).items():
            if k in merged and merged[k] != v:
                raise RunFailed(f"two components set the optimizer option {k!r}")
            merged[k] = v
    return merged


def make_optimizer(model: torch.nn.Module, train: dict[str, Any],
                   options: dict[str, Any]) -> tuple[torch.optim.Optimizer, Callable[[], None] | None]:
    """The optimizer plus a pre-step action (decoupled weight decay for SGD), or None."""
    options = dict(options)
    decoupled = options.pop("decoupled_weight_decay", False)
    params = [p for p in model.parameters() if p.requires_grad]
    lr = train["lr"]
    if train["optimizer"] == "adam":
        cls = torch.optim.AdamW if decoupled else torch.optim.Adam
        if decoupled:
            options.setdefault("weight_decay", 0.0)
        return cls(params, lr=lr, **options), None
    wd = options.pop("weight_decay", 0.0) if decoupled else 0.0
    opt = torch.optim.SGD(params, lr=lr, momentum=train["momentum"], **options)
    if not wd:
        return opt, None

    @torch.no_grad()
    def shrink() -> None:  # SGDW: shrink weights by lr * wd, outside the gradient
        for p in params:
            if p.grad is not None:
                p.mul_(1 - lr * wd)

    return opt, shrink


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(loss, accuracy) on a whole split, eval mode, in chunks; NaN for an empty split."""
    if len(x) == 0:  # no validation split (val_fraction = 0)
        return math.nan, math.nan
    was_training = model.training
    model.eval()
    loss_sum, correct = 0.0, 0
    for start in range(0, len(x), EVAL_CHUNK):
        logits = model(x[start:start + EVAL_CHUNK])
        target = y[start:start + EVAL_CHUNK]
        loss_sum += F.cross_entropy(logits, target, reduction="sum").item()
        correct += (logits.argmax(1) == target).sum().item()
    model.train(was_training)
    return loss_sum / len(x), correct / len(x)


def _soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for class indices or soft target distributions (mixup)."""
    if target.dtype.is_floating_point:
        return -(target * F.log_softmax(logits, dim=1)).sum(1).mean()
    return F.cross_entropy(logits, target)


def train_run(config: StudyConfig, registry: Registry, arm: Arm, seed: int,
              device: torch.device | None = None,
              on_epoch: Callable[[dict[str, float]], None] | None = None) -> RunResult:
    """Train one arm with one seed and measure it; raise RunFailed on divergence.

    ``on_epoch`` sees each epoch's metrics (the engine reports them to Optuna's
    pruner; an exception it raises, such as TrialPruned, ends the run).
    """
    started = time.perf_counter()
    model_params, train = _resolved(config, arm)
    device = device or pick_device(train["device"])
    set_threads(train["threads"])
    data = load_data(config, registry, arm.settings, device)
    seed_everything(seed)
    instances = {f"{kind}:{name}": registry.create(kind, name, params)
                 for kind, name, params in arm.components}
    tpm = trial_manager(instances)
    hooks = tpm.hook

    def make_layer(slot: str, features: int, dims: int) -> torch.nn.Module:
        layer = hooks.ablate_make_layer(slot=slot, features=features, dims=dims)
        return layer if layer is not None else torch.nn.Identity()

    builder = registry.create("model", config.model.name, model_params)
    model = builder.build(data.input_shape, data.num_classes, make_layer).to(device)
    hooks.ablate_configure_model(model=model)  # wrap or modify modules before the optimizer sees them
    optimizer, pre_step = make_optimizer(model, train, _merge_options(
        hooks.ablate_optimizer_options(model=model)))
    has = {name: bool(getattr(hooks, name).get_hookimpls()) for name in (
        "ablate_transform_batch", "ablate_loss_penalty", "ablate_after_step", "ablate_epoch_end")}

    generator = torch.Generator(device=device).manual_seed(seed)
    n, batch_size = len(data.x_train), train["batch_size"]
    history: list[dict[str, float]] = []
    stop_reason = "max_epochs"
    model.train()
    for epoch in range(1, train["epochs"] + 1):
        order = torch.randperm(n, generator=generator, device=device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            batch = Batch(data.x_train[idx], data.y_train[idx], generator)
            if has["ablate_transform_batch"]:
                hooks.ablate_transform_batch(batch=batch)
            logits = model(batch.x)
            loss = _soft_cross_entropy(logits, batch.y)
            total = loss
            if has["ablate_loss_penalty"]:
                for penalty in hooks.ablate_loss_penalty(model=model):
                    total = total + penalty
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            if pre_step is not None:
                pre_step()
            optimizer.step()
            if has["ablate_after_step"]:
                hooks.ablate_after_step(model=model)
            loss_sum += loss.detach() * len(idx)
            hard = batch.y.argmax(1) if batch.y.dtype.is_floating_point else batch.y
            correct += (logits.detach().argmax(1) == hard).sum()
        train_loss = loss_sum.item() / n
        # A non-finite loss fails the run, unless an active stopping rule (such as
        # "divergence") sees it first and stops the run with its own reason.
        diverged = not math.isfinite(train_loss)
        failure = f"diverged: training loss became {train_loss} in epoch {epoch}"
        if diverged and not has["ablate_epoch_end"]:
            raise RunFailed(failure)
        val_loss, val_acc = evaluate(model, data.x_val, data.y_val)
        metrics = {"epoch": epoch, "train_loss": train_loss, "train_accuracy": correct.item() / n,
                   "val_loss": val_loss, "val_accuracy": val_acc}
        history.append(metrics)
        if on_epoch is not None and not diverged:
            on_epoch(metrics)
        if has["ablate_epoch_end"]:
            state = EpochState(epoch, train["epochs"], model, metrics, history,
                               time.perf_counter() - started)
            reasons = [r for r in hooks.ablate_epoch_end(state=state) if r]
            if reasons:
                stop_reason = reasons[0]
                break
        if diverged:
            raise RunFailed(failure)
    hooks.ablate_train_end(model=model, stop_reason=stop_reason)

    final: dict[str, float] = {}
    for split in ("train", "val", "test"):
        loss, acc = evaluate(model, getattr(data, f"x_{split}"), getattr(data, f"y_{split}"))
        final[f"{split}_loss"], final[f"{split}_accuracy"] = loss, acc
    final["gap"] = final["train_accuracy"] - final["test_accuracy"]
    final["loss_gap"] = final["test_loss"] - final["train_loss"]
    resolved = {"model": {"name": config.model.name, **model_params}, "train": train,
                "components": [{"kind": k, "name": nm, **p} for k, nm, p in arm.components],
                "device": str(device)}
    return RunResult(final, history, len(history), stop_reason, time.perf_counter() - started,
                     copy.deepcopy(resolved))
