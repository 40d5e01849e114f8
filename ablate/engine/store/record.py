"""The study's stored record: what the report needs to know about a study
besides its runs, kept with the study in its storage so a report can be
rebuilt from storage alone. Typed and versioned; no torch or optuna import.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class StudyRecord:
    """One study: its question, design, fixed settings, arms and how it ran.

    ``train`` holds the settings that apply to every arm (those a factor varies
    are in ``arm_settings``); ``arm_settings`` maps each arm's name to the
    values that define it (factor levels and component parameters).
    ``started`` is when training first started, ``training_seconds`` the
    training time summed over every command and worker, ``last_command`` the
    last ``ablate run``'s start and wall seconds.
    """

    name: str
    question: str = ""
    study_file: str = ""
    design: dict[str, Any] = field(default_factory=dict)
    dataset: str = ""
    data_params: dict[str, Any] = field(default_factory=dict)
    split_seed: int = 0
    resplit: bool = False
    model: str = ""
    model_params: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    seeds: tuple[int, ...] = ()
    arms: tuple[str, ...] = ()
    arm_keys: dict[str, str] = field(default_factory=dict)
    arm_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    baseline: str | None = None
    factors: tuple[str, ...] = ()
    runs_total: int = 0
    test_size: int | None = None
    devices: tuple[str, ...] = ()
    versions: dict[str, str] = field(default_factory=dict)
    started: str = ""
    training_seconds: float | None = None
    last_command: dict[str, Any] = field(default_factory=dict)
    storage: str = ""
    optuna_study: str = ""
    search_runs: tuple[dict[str, Any], ...] = ()
    schema: int = SCHEMA_VERSION

    @property
    def seconds(self) -> float | None:
        """Wall seconds of the last command (what older reports called 'seconds')."""
        value = self.last_command.get("seconds")
        return float(value) if isinstance(value, (int, float)) else None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able data (tuples become lists)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StudyRecord:
        """Read a stored record; unknown keys (a newer ablate) are ignored,
        missing ones take their defaults."""
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in (data or {}).items():
            f = known.get(key)
            if f is None:
                continue
            if isinstance(value, list) and str(f.type).startswith("tuple"):
                value = tuple(value)
            values[key] = value
        values.setdefault("name", "")
        return cls(**values)

    def replace(self, **changes: Any) -> StudyRecord:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class RunEntry:
    """One planned run as stored with the study: which trials' outcomes count."""

    key: str
    arm: str
    seed: int
    values: dict[str, Any] = field(default_factory=dict)
    stage: str = "main"
    arm_key: str = ""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunEntry:
        return cls(
            str(data["key"]),
            str(data["arm"]),
            int(data["seed"]),
            dict(data.get("values") or {}),
            str(data.get("stage", "main")),
            str(data.get("arm_key", "")),
        )


def seed_rounds(low: int, high: int) -> tuple[int, ...]:
    """Seeds per arm after each round: min more each round, ending at max (3, 12 -> 3, 6, 9, 12).

    Rounds of min seeds rather than doubling (3, 6, 12): an extra look costs its share of
    alpha, but a study decided at 9 seeds stops there instead of going on to 12; in the
    simulations (benchmarks/adaptive_seeds.py) that spent about 8% fewer runs."""
    if not 1 <= low <= high:
        raise ValueError(f"need 1 <= min <= max, got {low}, {high}")
    out = [low]
    while out[-1] < high:
        out.append(min(out[-1] + low, high))
    return tuple(out)
