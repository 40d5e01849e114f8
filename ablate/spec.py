"""Plain frozen types that say what runs, with no torch or optuna import.

A ``RunSpec`` holds everything that determines a run's numbers and nothing
else: its hash is the run's identity, so resume, de-duplication and "a changed
setting makes new runs" all follow from it. Where and how fast a run executes
(device, threads) is an ``Execution``, recorded with the run, never part of it.
Treat the dicts inside these types as read-only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import Any

SECTIONS = ("model", "train", "data")

# Settings that decide where and how fast a run executes, not its numbers
# (compile: where they match eager's within ablate.train.compiled.TOLERANCE).
EXECUTION_SETTINGS = ("device", "threads", "stack", "compile")


def split_setting(setting: str) -> tuple[str, str]:
    """'model.slots' -> ('model', 'slots'); the one place settings are parsed."""
    section, _, param = setting.partition(".")
    return section, param


def canonical_json(value: Any) -> str:
    """JSON that is the same for equal values whatever the key order."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def content_hash(value: Any, length: int = 16) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:length]


@dataclass(frozen=True)
class Option:
    """One option of a factor: a level (a component name, ``none``, or a
    setting's value), the sub-parameters this option varies, and the
    component's full resolved parameters (empty for settings and ``none``).
    A component option's ``ref`` is the component's stored name, which may differ
    from its level as the study wrote it ("ablate:dropout" stores "dropout")."""

    level: Any
    varied: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    ref: str = ""

    @property
    def component(self) -> str:
        """The component it activates, by the name runs store (ablate.plugin.registry.Component.ref)."""
        return self.ref or str(self.level)


@dataclass(frozen=True)
class ComponentSpec:
    """A component to activate: its kind, registered name and resolved parameters."""

    kind: str
    name: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "params": dict(self.params)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ComponentSpec:
        return cls(data["kind"], data["name"], dict(data.get("params", {})))


# Components of these kinds act only between epochs, per seed (stopping rules):
# arms that differ only in them build the same network and take the same steps.
PER_SEED_KINDS = frozenset({"stopping"})

# [train] settings a stack holds per seat (each seed's optimizer step uses its own
# run's value): arms that differ only in them share a stack.
PER_SEAT_SETTINGS = ("lr", "momentum")

# The training recipe's kinds: made by the loop (the optimizer, the learning rate
# of each step), never registered as a run's hook implementations. A run without
# one trains with [train] optimizer (adam or sgd, momentum) at a constant lr.
RECIPE_KINDS = ("optimizer", "schedule")


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines one run's numbers.

    ``train`` holds the training settings that change results (epochs, batch
    size, optimizer, lr, momentum); ``data_hash`` is the content hash of
    file-based data, empty for generated or bundled data. ``data_dir`` is the
    folder the data's relative file paths start at (the study file's): where the
    files are, not what they hold, so it is not part of the run's identity.
    """

    data: ComponentSpec
    split_seed: int
    model: ComponentSpec
    train: dict[str, Any]
    components: tuple[ComponentSpec, ...]
    seed: int
    data_hash: str = ""
    data_dir: str = ""

    def to_json(self) -> dict[str, Any]:
        """The spec whole, for a training process on this machine (the data's folder included)."""
        out = self.identity_json()
        if self.data_dir:
            out["data_dir"] = self.data_dir
        return out

    def identity_json(self) -> dict[str, Any]:
        """What the run is, without where this machine keeps its files: what a run record
        stores (a study folder's absolute path would end up in every shared report)."""
        return {
            "data": self.data.to_json(),
            "split_seed": self.split_seed,
            "model": self.model.to_json(),
            "train": dict(self.train),
            "components": [c.to_json() for c in self.components],
            "seed": self.seed,
            "data_hash": self.data_hash,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunSpec:
        return cls(
            ComponentSpec.from_json(data["data"]),
            int(data["split_seed"]),
            ComponentSpec.from_json(data["model"]),
            dict(data["train"]),
            tuple(ComponentSpec.from_json(c) for c in data["components"]),
            int(data["seed"]),
            str(data.get("data_hash", "")),
            str(data.get("data_dir", "")),
        )

    @property
    def key(self) -> str:
        """The run's identity: equal for specs that train the same numbers."""
        return content_hash(self.identity_json())

    def stack_key(self, varying: Collection[tuple[str, str]] = ()) -> str:
        """What runs that may share one stack have in common: everything but the
        seed, the per-seed components (the arms with and without early stopping),
        the components whose (kind, name) is in ``varying`` (those whose layer
        stacks with a setting per seed, or none: dropout) and the settings a stack
        holds per seat (the learning rate)."""
        shared = tuple(c for c in self.components if c.kind not in PER_SEED_KINDS and (c.kind, c.name) not in varying)
        train = {k: v for k, v in self.train.items() if k not in PER_SEAT_SETTINGS}
        return replace(self.with_seed(0), components=shared, train=train).key

    def recipe(self, kind: str) -> ComponentSpec | None:
        """The run's optimizer or schedule component, or None (the [train] shorthand)."""
        return next((c for c in self.components if c.kind == kind), None)

    def with_seed(self, seed: int) -> RunSpec:
        """The same run with another seed (the seeds of one arm differ only here)."""
        return replace(self, seed=seed)


COMPILE_ALONE = "compile = true trains each seed alone, compiled (a stacked model is not compiled)"


@dataclass(frozen=True)
class Execution:
    """Where and how fast a run executes; recorded with its result, not part of its identity."""

    device: str = "auto"
    threads: int = 1
    stack: str = "auto"  # "auto": the seeds of an arm train as one stacked model where they can; "off": never
    compile: bool = False  # the training forward pass through torch.compile (each run alone)

    def may_stack(self, runs: int) -> bool:
        """Whether ``runs`` runs may train as one stacked model here: the one place
        that reads the stack setting (whether they can is the train layer's check).
        Compiled runs train alone: a stacked model is not compiled."""
        return self.stack != "off" and not self.compile and runs >= 2
