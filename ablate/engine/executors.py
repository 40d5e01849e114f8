"""How runs train: in this process (``InlineExecutor``), or in the worker
processes of ablate.engine.pool, which run ``child_main``.

The coordinator (ablate.engine.coordinator) owns the storage and the claims; an
executor only trains ``RunSpec``s and hands back events: ("epoch", key,
metrics), ("done", key, RunResult), ("failed", key, failure record),
("pruned", key, history), ("died", key, reason). Worker processes never touch
the database, so no two processes race on SQLite.
"""

from __future__ import annotations

import signal
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ablate.engine.environment import probe
from ablate.engine.events import Event, OnRunEpoch, RunPruned
from ablate.errors import UserError
from ablate.plugin.disabling import set_disabled
from ablate.plugin.manager import build_registry, make_plugin_manager
from ablate.plugin.registry import Registry
from ablate.plugin.versions import run_versions
from ablate.spec import Execution, RunSpec
from ablate.train.build import prepare_process
from ablate.train.failures import describe
from ablate.train.stacked.grouping import stack_splits
from ablate.train.stacked.training import train_group
from ablate.train.training import train_run

if TYPE_CHECKING:
    from ablate.engine.environment import Environment


def train_unit(
    keys: list[str],
    specs: list[RunSpec],
    registry: Registry,
    execution: Execution,
    on_epoch: Callable[[str, dict[str, float]], None],
) -> Iterator[Event]:
    """Train a unit of work: one run, or the seeds of one arm, stacked into one
    model where they can stack (in chunks that fit), else one by one. Yields
    each outcome as soon as it is known."""
    if not execution.may_stack(len(specs)):
        parts = [[i] for i in range(len(specs))]
    else:
        parts = stack_splits(specs, registry, execution)
    for part in parts:
        if len(part) == 1:
            yield _alone(keys[part[0]], specs[part[0]], registry, execution, on_epoch)
        else:
            yield from _stacked([keys[i] for i in part], [specs[i] for i in part], registry, execution, on_epoch)


def _alone(
    key: str, spec: RunSpec, registry: Registry, execution: Execution, on_epoch: Callable[[str, dict[str, float]], None]
) -> Event:
    return train_events(spec, key, registry, execution, lambda m: on_epoch(key, m))


def _stacked(
    keys: list[str],
    specs: list[RunSpec],
    registry: Registry,
    execution: Execution,
    on_epoch: Callable[[str, dict[str, float]], None],
) -> list[Event]:

    histories: dict[str, list[dict[str, float]]] = {k: [] for k in keys}

    def callback(key: str) -> Callable[[dict[str, float]], None]:
        def record(metrics: dict[str, float]) -> None:
            histories[key].append(metrics)
            on_epoch(key, metrics)

        return record

    outcomes = train_group(specs, registry, execution, on_epoch=[callback(k) for k in keys])
    events: list[Event] = []
    for key, spec, outcome in zip(keys, specs, outcomes, strict=True):
        if isinstance(outcome, RunPruned):
            events.append(("pruned", key, histories[key]))
        elif isinstance(outcome, BaseException):
            events.append(("failed", key, describe(outcome, registry)))
        else:
            outcome.versions = run_versions(spec, registry)
            events.append(("done", key, outcome))
    return events


def train_events(
    spec: RunSpec, key: str, registry: Registry, execution: Execution, on_epoch: Callable[[dict[str, float]], None]
) -> Event:
    """Train one spec; its outcome as an event (any exception fails the run, never the worker)."""

    history: list[dict[str, float]] = []

    def record(metrics: dict[str, float]) -> None:
        history.append(metrics)
        on_epoch(metrics)

    try:
        result = train_run(spec, registry, execution, on_epoch=record)
    except RunPruned:
        return ("pruned", key, history)
    except Exception as exc:  # one failure policy: the run fails, the study goes on
        return ("failed", key, describe(exc, registry))
    result.versions = run_versions(spec, registry)
    return ("done", key, result)


class InlineExecutor:
    """Trains in this process, one run at a time (the default: `--jobs 1`)."""

    capacity = 1
    background = False

    def __init__(self, registry: Registry, execution: Execution):
        self.registry, self.execution = registry, execution
        self.events: list[Event] = []
        self.on_epoch: OnRunEpoch = lambda key, metrics: False

    def submit(self, keys: list[str], specs: list[RunSpec]) -> None:
        """Train the unit. An error of the coordinator's own in an epoch's report (a storage
        it gave up on) stops the unit and is raised here, never stored as the run's failure."""
        stopped: list[Exception] = []

        def on_epoch(key: str, metrics: dict[str, float]) -> None:
            try:
                prune = self.on_epoch(key, metrics)
            except Exception as exc:
                stopped.append(exc)
                raise RunPruned("stopped: the coordinator failed") from exc
            if prune or stopped:
                raise RunPruned(f"pruned at epoch {metrics['epoch']}")

        events = list(train_unit(keys, specs, self.registry, self.execution, on_epoch))
        if stopped:
            raise stopped[0]
        self.events += events

    def poll(self, timeout: float) -> list[Event]:
        events, self.events = self.events, []
        return events

    def busy(self) -> int:
        return 0

    def environment(self, specs: list[RunSpec], wanted_device: str) -> Environment:

        return probe(specs, self.registry, wanted_device)

    def close(self) -> None:
        pass


def child_main(inbox: Any, outbox: Any, prune: Any, plugin_files: list[str], disabled: list[str]) -> None:
    """A pool worker (ablate.engine.pool): build the registry once, then train what the
    coordinator sends, each unit with the execution settings sent with it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the coordinator's to handle

    set_disabled(disabled)  # the command line's --disable-plugin (the environment is inherited)
    registry = build_registry(make_plugin_manager([Path(f) for f in plugin_files]))
    threads = None
    while True:
        task = inbox.get()
        if task is None:
            return
        if task[0] == "environment":  # asked once, before anything trains
            outbox.put(_environment(task[1], task[2], registry))
            continue
        keys, spec_jsons, execution = task
        if execution.threads != threads:
            threads = execution.threads
            prepare_process(threads)
        prune.value = 0

        def on_epoch(key: str, metrics: dict[str, float]) -> None:
            outbox.put(("epoch", key, metrics))
            if prune.value:
                raise RunPruned(f"pruned at epoch {metrics['epoch']}")

        for event in train_unit(keys, [RunSpec.from_json(s) for s in spec_jsons], registry, execution, on_epoch):
            outbox.put(event)


def _environment(spec_jsons: list[dict[str, Any]], wanted_device: str, registry: Registry) -> Event:
    """A worker's answer to ``ProcessPool.environment``: the environment, or the error to raise there."""

    try:
        return ("environment", "", probe([RunSpec.from_json(s) for s in spec_jsons], registry, wanted_device))
    except UserError as err:
        return ("environment_failed", "", err)
    except Exception:
        return ("environment_failed", "", RuntimeError("a worker could not load the data:\n" + traceback.format_exc()))
