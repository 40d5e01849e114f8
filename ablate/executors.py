"""Where runs train: in this process, or in a pool of local worker processes.

The coordinator (ablate.coordinator) owns the storage and the claims; an
executor only trains ``RunSpec``s and hands back events: ("epoch", key,
metrics), ("done", key, RunResult), ("failed", key, failure record),
("pruned", key, history), ("died", key, reason). Worker processes never touch
the database, so no two processes race on SQLite.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from ablate.failures import describe
from ablate.registry import Registry
from ablate.spec import Execution, RunSpec

Event = tuple[str, str, Any]
OnEpoch = Callable[[str, dict[str, float]], bool]  # (run key, metrics) -> prune now?


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


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
    if len(specs) == 1 or execution.stack == "off":
        parts = [[i] for i in range(len(specs))]
    else:
        from ablate.stacked_plan import stack_splits

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
    from ablate.stacked_training import train_group
    from ablate.versions import run_versions

    histories: dict[str, list[dict[str, float]]] = {k: [] for k in keys}

    def callback(key: str) -> Callable[[dict[str, float]], None]:
        def record(metrics: dict[str, float]) -> None:
            histories[key].append(metrics)
            on_epoch(key, metrics)

        return record

    outcomes = train_group(specs, registry, execution, on_epoch=[callback(k) for k in keys])
    events: list[Event] = []
    for key, spec, outcome in zip(keys, specs, outcomes, strict=True):
        if isinstance(outcome, optuna.TrialPruned):
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
    from ablate.training import train_run
    from ablate.versions import run_versions

    history: list[dict[str, float]] = []

    def record(metrics: dict[str, float]) -> None:
        history.append(metrics)
        on_epoch(metrics)

    try:
        result = train_run(spec, registry, execution, on_epoch=record)
    except optuna.TrialPruned:
        return ("pruned", key, history)
    except Exception as exc:  # one failure policy: the run fails, the study goes on
        return ("failed", key, describe(exc, registry))
    result.versions = run_versions(spec, registry)
    return ("done", key, result)


class InlineExecutor:
    """Trains in this process, one run at a time (the default: `--jobs 1`)."""

    capacity = 1

    def __init__(self, registry: Registry, execution: Execution):
        self.registry, self.execution = registry, execution
        self.events: list[Event] = []
        self.on_epoch: OnEpoch = lambda key, metrics: False

    def submit(self, keys: list[str], specs: list[RunSpec]) -> None:
        def on_epoch(key: str, metrics: dict[str, float]) -> None:
            if self.on_epoch(key, metrics):
                raise optuna.TrialPruned(f"pruned at epoch {metrics['epoch']}")

        self.events += train_unit(keys, specs, self.registry, self.execution, on_epoch)

    def poll(self, timeout: float) -> list[Event]:
        events, self.events = self.events, []
        return events

    def busy(self) -> int:
        return 0

    def close(self) -> None:
        pass


@dataclass
class _Child:
    process: mp.process.BaseProcess
    inbox: Any
    prune: Any
    keys: list[str] = field(default_factory=list)


def _child_main(
    inbox: Any, outbox: Any, prune: Any, plugin_files: list[str], disabled: list[str], execution: Execution
) -> None:
    """A pool worker: build the registry once, then train what the coordinator sends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the coordinator's to handle
    from ablate.build import set_threads
    from ablate.disabling import set_disabled
    from ablate.manager import build_registry, make_plugin_manager

    set_disabled(disabled)  # the command line's --disable-plugin (the environment is inherited)
    set_threads(execution.threads)
    registry = build_registry(make_plugin_manager([Path(f) for f in plugin_files]))
    while True:
        task = inbox.get()
        if task is None:
            return
        keys, spec_jsons = task
        prune.value = 0

        def on_epoch(key: str, metrics: dict[str, float]) -> None:
            outbox.put(("epoch", key, metrics))
            if prune.value:
                raise optuna.TrialPruned(f"pruned at epoch {metrics['epoch']}")

        for event in train_unit(keys, [RunSpec.from_json(s) for s in spec_jsons], registry, execution, on_epoch):
            outbox.put(event)


@dataclass
class ProcessPool:
    """N worker processes on this machine, each with its own torch thread count.
    A worker that dies (killed, out of memory) is replaced; its run is reported
    as "died" so the coordinator gives it back at once."""

    jobs: int
    plugin_files: list[str]
    execution: Execution
    disabled: list[str] = field(default_factory=list)
    children: list[_Child] = field(default_factory=list)

    def __post_init__(self) -> None:
        methods = mp.get_all_start_methods()
        self.ctx: Any = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
        if "forkserver" in methods:
            self.ctx.set_forkserver_preload(["torch", "ablate.training", "ablate.executors"])
        self.outbox: Any = self.ctx.Queue()
        self.children = [self._spawn() for _ in range(self.jobs)]
        self.on_epoch: OnEpoch = lambda key, metrics: False

    @property
    def capacity(self) -> int:
        return self.jobs

    def _spawn(self) -> _Child:
        inbox, prune = self.ctx.Queue(), self.ctx.Value("b", 0)
        process = self.ctx.Process(
            target=_child_main,
            daemon=True,
            args=(inbox, self.outbox, prune, self.plugin_files, self.disabled, self.execution),
        )
        process.start()
        return _Child(process, inbox, prune)

    def busy(self) -> int:
        return sum(1 for c in self.children if c.keys)

    def submit(self, keys: list[str], specs: list[RunSpec]) -> None:
        child = next(c for c in self.children if not c.keys)
        child.keys = list(keys)
        child.inbox.put((list(keys), [s.to_json() for s in specs]))

    def poll(self, timeout: float) -> list[Event]:
        """Outcomes that arrive within ``timeout`` (returning at the first); epoch
        events are handled here, so the coordinator's loop turns once per outcome,
        not once per epoch."""
        deadline = time.monotonic() + timeout
        out: list[Event] = []
        while not out:
            left = deadline - time.monotonic()
            try:
                event = self.outbox.get(timeout=max(left, 0.0)) if left > 0 else self.outbox.get_nowait()
            except queue.Empty:
                break
            if event[0] == "epoch":
                if self.on_epoch(event[1], event[2]):
                    self.prune(event[1])
                continue
            for child in self.children:
                if event[1] in child.keys:
                    child.keys.remove(event[1])
            out.append(event)
        return out + self._deaths()

    def prune(self, key: str) -> None:
        """Ask the worker training ``key`` to stop it at its next epoch end."""
        for child in self.children:
            if key in child.keys:
                child.prune.value = 1

    def _deaths(self) -> list[Event]:
        events: list[Event] = []
        for i, child in enumerate(self.children):
            if not child.process.is_alive():
                events += [("died", key, f"worker process exited ({child.process.exitcode})") for key in child.keys]
                self.children[i] = self._spawn()
        return events

    def close(self) -> None:
        for child in self.children:
            if child.process.is_alive():
                child.process.terminate()
        for child in self.children:
            child.process.join(timeout=5)
