"""A run's parts from its spec: data, model (through the slot hooks), the
per-run plugin manager of active components, and the optimizer.

The one way from a ``RunSpec`` to trainable objects: training, ``ablate
plan``'s calibration and the orderings design all come through here, so they
cannot build different networks for the same spec.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pluggy
import torch

from ablate.components import DataSplits
from ablate.data.datafiles import located
from ablate.data.seeds import numpy_seed
from ablate.plugin.manager import trial_manager
from ablate.plugin.registry import Registry
from ablate.spec import RECIPE_KINDS, ComponentSpec, RunSpec, canonical_json
from ablate.train.allocator import keep_freed_memory
from ablate.train.optimizers import Optimizer, PreStep, make_component_optimizer, make_optimizer


class RunFailed(Exception):
    """A run that could not finish (diverged, a component raised); recorded with its reason."""


@dataclass
class RunParts:
    """Everything one run trains with; ``hooks`` calls the run's active components."""

    spec: RunSpec
    device: torch.device
    data: DataSplits
    model: torch.nn.Module
    hooks: pluggy.HookRelay
    options: dict[str, Any] = field(default_factory=dict)  # the merged optimizer options (a stack reuses them)
    recipe: dict[str, Any] = field(default_factory=dict)  # "optimizer"/"schedule" -> the component instance

    @cached_property
    def _optimizer(self) -> tuple[Optimizer, PreStep | None]:
        return self.make_optimizer(self.model)

    def make_optimizer(self, model: torch.nn.Module) -> tuple[Optimizer, PreStep | None]:
        """The run's optimizer for ``model`` (its own, or a stack of its seeds)."""
        component = self.recipe.get("optimizer")
        if component is None:
            return make_optimizer(model, self.spec.train, self.options)
        try:
            return make_component_optimizer(model, component, float(self.spec.train["lr"]), self.options)
        except ValueError as exc:
            raise RunFailed(str(exc)) from exc

    @property
    def optimizer(self) -> Optimizer:
        """Made on first use: a stacked group never uses its runs' own optimizers."""
        return self._optimizer[0]

    @property
    def pre_step(self) -> PreStep | None:
        return self._optimizer[1]

    def has(self, hook: str) -> bool:
        """Whether any active component implements ``hook`` (skip the call if not)."""
        return bool(getattr(self.hooks, hook).get_hookimpls())


def pick_device(wanted: str) -> torch.device:
    """'auto' takes CUDA when present, else the CPU."""
    if wanted == "cuda" or (wanted == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def prepare_process(threads: int) -> None:
    """Set a training process up: its torch thread count (small models are dominated
    by thread overhead: one thread per process is fastest) and a malloc that keeps
    freed memory (ablate.train.allocator: no page faults for every step's tensors)."""
    keep_freed_memory()
    if threads > 0 and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(numpy_seed(seed))
    torch.manual_seed(seed)


_DATA_CACHE: dict[str, DataSplits] = {}


def load_data(spec: RunSpec, registry: Registry, device: torch.device) -> DataSplits:
    """The run's data splits on the device, cached per process (runs of a study share them)."""
    key = canonical_json([spec.data.to_json(), spec.split_seed, spec.data_hash, spec.data_dir, str(device)])
    if key not in _DATA_CACHE:
        dataset = registry.create("dataset", spec.data.name, located(spec.data.params, spec.data_dir))
        _DATA_CACHE[key] = dataset.load(spec.split_seed).to(device)
    return _DATA_CACHE[key]


def component_hooks(components: tuple[ComponentSpec, ...], registry: Registry) -> pluggy.HookRelay:
    """A fresh per-run manager holding instances of the active components only."""
    instances = {
        f"{c.kind}:{c.name}": registry.create(c.kind, c.name, dict(c.params))
        for c in components
        if c.kind not in RECIPE_KINDS
    }
    return trial_manager(instances).hook


def build_model(spec: RunSpec, registry: Registry, data: DataSplits, hooks: pluggy.HookRelay) -> torch.nn.Module:
    """The model plugin's network, each slot filled by the active component for it."""

    def make_layer(slot: str, features: int, dims: int) -> torch.nn.Module:
        layer = hooks.ablate_make_layer(slot=slot, features=features, dims=dims)
        return layer if layer is not None else torch.nn.Identity()

    builder = registry.create("model", spec.model.name, dict(spec.model.params))
    model: torch.nn.Module = builder.build(data.input_shape, data.num_classes, make_layer)
    return model


def model_signature(spec: RunSpec, registry: Registry) -> str:
    """The architecture a spec builds (modules in order), to spot equivalent arms."""
    device = torch.device("cpu")
    data = load_data(spec, registry, device)
    return repr(build_model(spec, registry, data, component_hooks(spec.components, registry)))


def merge_options(results: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Optimizer options from every component; two that disagree fail the run."""
    merged: dict[str, Any] = {}
    for options in results:
        for k, v in (options or {}).items():
            if k in merged and merged[k] != v:
                raise RunFailed(f"two components set the optimizer option {k!r}")
            merged[k] = v
    return merged


def build_run(spec: RunSpec, registry: Registry, device: torch.device) -> RunParts:
    """Data, seeded model and optimizer for one run, in a fixed order so a spec
    always gives the same initial weights."""
    data = load_data(spec, registry, device)
    seed_everything(spec.seed)
    hooks = component_hooks(spec.components, registry)
    model = build_model(spec, registry, data, hooks).to(device)
    hooks.ablate_configure_model(model=model)  # wrap or modify modules before the optimizer sees them
    options = merge_options(hooks.ablate_optimizer_options(model=model))
    return RunParts(spec, device, data, model, hooks, options, recipe_instances(spec, registry))


def recipe_instances(spec: RunSpec, registry: Registry) -> dict[str, Any]:
    """The run's optimizer and schedule components ("optimizer"/"schedule" -> instance).
    A [train] optimizer other than the shorthand's adam and sgd with no component
    (a factor over train.optimizer) is that optimizer with its default params."""
    recipe = {
        c.kind: registry.create(c.kind, c.name, dict(c.params)) for c in spec.components if c.kind in RECIPE_KINDS
    }
    name = str(spec.train.get("optimizer", "adam"))
    if "optimizer" not in recipe and name not in ("adam", "sgd"):
        params = registry.resolve_params("optimizer", name, {}, "train.optimizer")
        recipe["optimizer"] = registry.create("optimizer", name, params)
    return recipe
