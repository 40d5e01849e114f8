"""The study design -> the list of arms. Arms are configurations; seeds are
replicates and never part of an arm."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ablate.data.datafiles import located
from ablate.data.datahash import data_hash
from ablate.errors import UserError, did_you_mean
from ablate.plugin.registry import OFF
from ablate.spec import ComponentSpec, Option, RunSpec, content_hash, split_setting
from ablate.study.config import Factor, StudyConfig, identity_train

MAX_ARMS = 5000

Pick = tuple[Factor, Option]


@dataclass(frozen=True)
class Arm:
    """One configuration of the study.

    ``values`` are the flat primitive values that distinguish it (factor ->
    level, "factor.param" -> a varied sub-parameter): Optuna parameters and
    results columns. ``components`` are the components to activate;
    ``settings`` override model/train/data parameters ("section.param" keys).
    """

    name: str
    values: dict[str, Any]
    components: tuple[ComponentSpec, ...]
    settings: dict[str, Any]

    @property
    def key(self) -> str:
        """A stable id: the hash of what the arm runs, not of its name."""
        return content_hash([[c.to_json() for c in self.components], self.settings])


def primitive(value: Any) -> Any:
    """Optuna categorical choices and table cells must be primitives: encode the rest."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value)


def run_spec(config: StudyConfig, arm: Arm, seed: int) -> RunSpec:
    """Everything that determines the numbers of this arm's run with this seed."""
    sections: dict[str, dict[str, Any]] = {
        "data": dict(config.data.params),
        "model": dict(config.model.params),
        "train": dict(config.training_settings),
    }
    for setting, value in arm.settings.items():
        section, param = split_setting(setting)
        sections[section][param] = value
    split_seed = config.split_seed + seed if config.resplit else config.split_seed
    return RunSpec(
        data=ComponentSpec("dataset", config.data.name, sections["data"]),
        data_hash=data_hash(located(sections["data"], config.data_dir)),
        data_dir=config.data_dir,
        split_seed=split_seed,
        model=ComponentSpec("model", config.model.name, sections["model"]),
        train=identity_train(sections["train"]),
        components=with_recipe(arm, config.recipe),
        seed=seed,
    )


def with_recipe(arm: Arm, recipe: tuple[ComponentSpec, ...]) -> tuple[ComponentSpec, ...]:
    """The arm's components and the [train] optimizer and schedule where the arm
    sets none of that kind (a factor over a kind, or over train.optimizer, wins)."""
    kinds = {c.kind for c in arm.components}
    if "train.optimizer" in arm.settings:
        kinds.add("optimizer")
    return arm.components + tuple(c for c in recipe if c.kind not in kinds)


def build_arms(config: StudyConfig, network: Callable[[RunSpec], str] | None = None) -> list[Arm]:
    """The arms the study's design enumerates up front (none for sampled designs:
    a search's arms are chosen by its sampler while it runs). ``network`` names the
    architecture a spec builds (the train layer knows; the engine passes it): with
    it, an orderings design keeps one arm per distinct network."""
    kind = config.design.kind
    if config.design.sampled:
        return []
    if kind == "leave_one_out":
        arms = leave_one_out(config)
    elif kind == "add_one_in":
        arms = add_one_in(config)
    else:
        arms = factorial(config)
    if kind == "orderings" and network is not None:
        arms = distinct_networks(config, network, arms)
    check_distinct_runs(config, arms)
    return unique_names(arms)


def check_distinct_runs(config: StudyConfig, arms: list[Arm]) -> None:
    """Two arms that train the same runs would share them in storage and count each
    run twice in the report (narrower intervals from no new data): refuse, naming
    the factor whose levels came to the same configuration."""
    seen: dict[str, Arm] = {}
    for arm in arms:
        key = run_spec(config, arm, config.seeds[0]).key
        if key not in seen:
            seen[key] = arm
            continue
        first = seen[key]
        factors = sorted({k.split(".")[0] for k in arm.values if arm.values[k] != first.values.get(k)})
        raise UserError(
            f"arms {first.name!r} and {arm.name!r} train the same runs: "
            + (f"factor {factors[0]!r}'s levels there come to one configuration" if factors else "they are one arm"),
            where=str(config.path),
            key=f"factors.{factors[0]}" if factors else "factors",
            expected=f"levels of {factors[0]!r} that change what is trained" if factors else "distinct arms",
        )


def factorial(config: StudyConfig) -> list[Arm]:
    """Every combination of every factor's options, in file order."""
    total = 1
    for f in config.factors:
        total *= len(f.options)
    if total > MAX_ARMS:
        raise UserError(
            f"the full factorial has {total} arms, more than {MAX_ARMS}",
            key="factors",
            expected="fewer factors or levels",
        )
    combos: list[list[Pick]] = [[]]
    for f in config.factors:
        combos = [c + [(f, opt)] for c in combos for opt in f.options]
    return [_arm(combo) for combo in combos]


def _on(factor: Factor) -> Option:
    return next(o for o in factor.options if o.level != OFF)


def _off(factor: Factor) -> Option:
    return next((o for o in factor.options if o.level == OFF), factor.options[0])


def leave_one_out(config: StudyConfig) -> list[Arm]:
    """The full configuration, then each component factor switched off in turn."""
    return _one_at_a_time(config, start=_on, change=_off, first="all", label="all - {}")


def add_one_in(config: StudyConfig) -> list[Arm]:
    """The baseline (every component off), then each component factor on alone."""
    return _one_at_a_time(config, start=_off, change=_on, first="baseline", label="baseline + {}")


def _one_at_a_time(
    config: StudyConfig, start: Callable[[Factor], Option], change: Callable[[Factor], Option], first: str, label: str
) -> list[Arm]:
    base = [(f, start(f) if f.kind else f.options[0]) for f in config.factors]
    arms = [_arm(base, name=first)]
    for f in (f for f in config.factors if f.kind):
        arms.append(_arm([(g, change(g) if g is f else opt) for g, opt in base], name=label.format(f.name)))
    return arms


def distinct_networks(config: StudyConfig, network: Callable[[RunSpec], str], arms: list[Arm]) -> list[Arm]:
    """Drop arms that build the same network as an earlier one (e.g. an empty
    norm slot moved around): same modules in the same order, same other factors."""
    order_factors = {f.name for f in config.factors if f.setting == "model.slots"}
    seen: set[str] = set()
    kept = []
    for arm in arms:
        others = {k: v for k, v in arm.values.items() if k.split(".")[0] not in order_factors}
        signature = json.dumps([others, network(run_spec(config, arm, 0))], sort_keys=True, default=str)
        if signature not in seen:
            seen.add(signature)
            kept.append(arm)
    return kept


def sampled_arm(config: StudyConfig, values: dict[str, Any]) -> Arm:
    """The arm for values an Optuna sampler chose (levels, list values, range values)."""
    picks: list[Pick] = []
    for f in config.factors:
        if f.range is not None:
            picks.append((f, Option(values[f.name])))
            continue
        level = values[f.name]
        given = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith(f.name + ".")}
        option = next(
            o for o in f.options if primitive(o.level) == level and all(given.get(p) == v for p, v in o.varied.items())
        )
        ranged = {p: given[p] for p in f.ranges.get(option.level, {})}
        picks.append((f, Option(option.level, {**option.varied, **ranged}, {**option.params, **ranged}, option.ref)))
    return _arm(picks)


def label(value: Any) -> str:
    """A value as it appears in an arm's name: floats at full (round-trip) precision,
    so distinct values never share a name."""
    return repr(value) if isinstance(value, float) else str(primitive(value))


def unique_names(arms: list[Arm]) -> list[Arm]:
    """Distinct arms never share a name: a clash (which full-precision labels
    make unlikely) gets the arm's key as a suffix."""
    counts: dict[str, int] = {}
    for arm in arms:
        counts[arm.name] = counts.get(arm.name, 0) + 1
    return [
        arm if counts[arm.name] == 1 else Arm(f"{arm.name} #{arm.key[:6]}", arm.values, arm.components, arm.settings)
        for arm in arms
    ]


def _arm(combo: list[Pick], name: str | None = None) -> Arm:
    values: dict[str, Any] = {}
    components = []
    settings: dict[str, Any] = {}
    parts = []
    for factor, option in combo:
        values[factor.name] = primitive(option.level)
        for p, v in option.varied.items():
            values[f"{factor.name}.{p}"] = v
        if factor.setting:
            settings[factor.setting] = option.level
            if factor.varied or factor.range is not None:
                parts.append(f"{factor.name}={label(option.level)}")
            continue
        if option.level == OFF or factor.kind is None:
            continue
        components.append(ComponentSpec(factor.kind, option.component, dict(option.params)))
        if factor.varied or factor.ranges:
            sub = ",".join(f"{p}={label(v)}" for p, v in option.varied.items())
            parts.append(f"{option.level}({sub})" if sub else str(option.level))
    return Arm(name or " + ".join(parts) or "baseline", values, tuple(components), settings)


def baseline_arm(config: StudyConfig, arms: list[Arm]) -> str | None:
    """The arm the study names as baseline, else "all" for leave-one-out, else the
    all-off arm, else None."""
    names = [a.name for a in arms]
    if config.baseline:
        if config.baseline not in names:
            raise UserError(
                f"no arm named {config.baseline!r}",
                key="study.baseline",
                where=str(config.path),
                expected="one of: " + ", ".join(names),
                hint=did_you_mean(config.baseline, names),
            )
        return config.baseline
    if config.design.kind == "leave_one_out":
        return "all"  # each arm then reads as the cost of removing one component
    return "baseline" if "baseline" in names else None
