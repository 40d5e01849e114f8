"""The study design -> the list of arms. Arms are configurations; seeds are
replicates and never part of an arm."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from ablate.config import StudyConfig
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


def _arm(combo: list[tuple]) -> Arm:
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
            if factor.varied:
                parts.append(f"{factor.name}={primitive(level)}")
            continue
        if level == OFF:
            continue
        components.append((factor.kind, level, params))
        if factor.varied:
            sub = ",".join(f"{p}={v}" for p, v in varied.items())
            parts.append(f"{level}({sub})" if sub else str(level))
    name = " + ".join(parts) or "baseline"
    return Arm(name, values, tuple(components), settings)


def baseline_arm(config: StudyConfig, arms: list[Arm]) -> str | None:
    """The arm the study names as baseline, else the all-off arm, else None."""
    names = [a.name for a in arms]
    if config.baseline:
        if config.baseline not in names:
            raise UserError(f"no arm named {config.baseline!r}", key="study.baseline",
                            where=str(config.path), expected="one of: " + ", ".join(names),
                            hint=did_you_mean(config.baseline, names))
        return config.baseline
    return "baseline" if "baseline" in names else None
