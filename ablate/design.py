"""The study design -> the list of arms. Arms are configurations; seeds are
replicates and never part of an arm."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from ablate.config import StudyConfig
from ablate.registry import Registry
from ablate.errors import UserError, did_you_mean
from ablate.registry import OFF

MAX_ARMS = 5000


@dataclass(frozen=True)
class Arm:
    """One configuration of the study.

    ``values`` are the flat primitive values that distinguish it (factor ->
    level, "factor.param" -> a varied sub-parameter): Optuna parameters and
    results columns. ``components`` are the (kind, name, params) to activate;
    ``settings`` override model/train/data parameters.
    """

    name: str
    values: dict[str, Any]
    components: tuple[tuple[str, str, dict[str, Any]], ...]
    settings: dict[str, Any]

    @property
    def key(self) -> str:
        """A stable id: the hash of what the arm runs."""
        blob = json.dumps([self.components, self.settings], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def primitive(value: Any) -> Any:
    """Optuna categorical choices and table cells must be primitives: encode the rest."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value)


def build_arms(config: StudyConfig, registry: Registry | None = None) -> list[Arm]:
    """The arms the study's design enumerates up front (none for sampled designs:
    a search's arms are chosen by its sampler while it runs)."""
    kind = config.design.kind
    if config.design.sampled:
        return []
    if kind == "leave_one_out":
        return leave_one_out(config)
    if kind == "add_one_in":
        return add_one_in(config)
    arms = factorial(config)
    if kind == "orderings":
        arms = distinct_networks(config, registry, arms)
    return arms


def factorial(config: StudyConfig) -> list[Arm]:
    """Every combination of every factor's options, in file order."""
    total = 1
    for f in config.factors:
        total *= len(f.options)
    if total > MAX_ARMS:
        raise UserError(f"the full factorial has {total} arms, more than {MAX_ARMS}", key="factors",
                        expected="fewer factors or levels")
    combos: list[list[tuple]] = [[]]
    for f in config.factors:
        combos = [c + [(f, opt)] for c in combos for opt in f.options]
    return [_arm(combo) for combo in combos]


def _on(factor) -> tuple:
    return next(o for o in factor.options if o[0] != OFF)


def _off(factor) -> tuple:
    return next((o for o in factor.options if o[0] == OFF), factor.options[0])


def leave_one_out(config: StudyConfig) -> list[Arm]:
    """The full configuration, then each component factor switched off in turn."""
    return _one_at_a_time(config, start=_on, change=_off, first="all", label="all - {}")


def add_one_in(config: StudyConfig) -> list[Arm]:
    """The baseline (every component off), then each component factor on alone."""
    return _one_at_a_time(config, start=_off, change=_on, first="baseline", label="baseline + {}")


def _one_at_a_time(config: StudyConfig, start, change, first: str, label: str) -> list[Arm]:
    base = [(f, start(f) if f.kind else f.options[0]) for f in config.factors]
    arms = [_arm(base, name=first)]
    for f in (f for f in config.factors if f.kind):
        arms.append(_arm([(g, change(g) if g is f else opt) for g, opt in base], name=label.format(f.name)))
    return arms


def distinct_networks(config: StudyConfig, registry: Registry | None, arms: list[Arm]) -> list[Arm]:
    """Drop arms that build the same network as an earlier one (e.g. an empty
    norm slot moved around): same modules in the same order, same other factors."""
    if registry is None:
        return arms
    import torch

    from ablate.manager import trial_manager
    from ablate.training import load_data

    order_factors = {f.name for f in config.factors if f.setting == "model.slots"}
    seen: set[str] = set()
    kept = []
    for arm in arms:
        data = load_data(config, registry, arm.settings, torch.device("cpu"))
        instances = {f"{k}:{n}": registry.create(k, n, p) for k, n, p in arm.components}
        hooks = trial_manager(instances).hook
        params = {**config.model.params, **{k.split(".", 1)[1]: v for k, v in arm.settings.items()
                                            if k.startswith("model.")}}
        model = registry.create("model", config.model.name, params).build(
            data.input_shape, data.num_classes,
            lambda slot, f, d: hooks.ablate_make_layer(slot=slot, features=f, dims=d) or torch.nn.Identity())
        others = {k: v for k, v in arm.values.items() if k.split(".")[0] not in order_factors}
        signature = json.dumps([others, repr(model)], sort_keys=True, default=str)
        if signature not in seen:
            seen.add(signature)
            kept.append(arm)
    return kept


def sampled_arm(config: StudyConfig, values: dict[str, Any]) -> Arm:
    """The arm for values an Optuna sampler chose (levels, list values, range values)."""
    picks = []
    for f in config.factors:
        if f.range is not None:
            picks.append((f, (values[f.name], {}, {})))
            continue
        level = values[f.name]
        given = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith(f.name + ".")}
        option = next(o for o in f.options if primitive(o[0]) == level
                      and all(given.get(p) == v for p, v in o[1].items()))
        ranged = {p: given[p] for p in f.ranges.get(option[0], {})}
        picks.append((f, (option[0], {**option[1], **ranged}, {**option[2], **ranged})))
    return _arm(picks)


def _label(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(primitive(value))


def _arm(combo: list[tuple], name: str | None = None) -> Arm:
    values: dict[str, Any] = {}
    components = []
    settings: dict[str, Any] = {}
    parts = []
    for factor, (level, varied, params) in combo:
        values[factor.name] = primitive(level)
        for p, v in varied.items():
            values[f"{factor.name}.{p}"] = v
        if factor.setting:
            settings[factor.setting] = level
            if factor.varied or factor.range is not None:
                parts.append(f"{factor.name}={_label(level)}")
            continue
        if level == OFF:
            continue
        components.append((factor.kind, level, params))
        if factor.varied or factor.ranges:
            sub = ",".join(f"{p}={_label(v)}" for p, v in varied.items())
            parts.append(f"{level}({sub})" if sub else str(level))
    name = name or " + ".join(parts) or "baseline"
    return Arm(name, values, tuple(components), settings)


def baseline_arm(config: StudyConfig, arms: list[Arm]) -> str | None:
    """The arm the study names as baseline, else "all" for leave-one-out, else the
    all-off arm, else None."""
    names = [a.name for a in arms]
    if config.baseline:
        if config.baseline not in names:
            raise UserError(f"no arm named {config.baseline!r}", key="study.baseline",
                            where=str(config.path), expected="one of: " + ", ".join(names),
                            hint=did_you_mean(config.baseline, names))
        return config.baseline
    if config.design.kind == "leave_one_out":
        return "all"  # each arm then reads as the cost of removing one component
    return "baseline" if "baseline" in names else None
