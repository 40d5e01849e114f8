"""Worker processes on this machine (``--jobs N``). Torch-free on purpose: the
command line starts the pool before it imports the engine, so the fork
server's imports (torch, seconds) run on one core while the coordinator's own
start-up runs on another. The workers run ablate.engine.executors.child_main.

A worker that dies (killed, out of memory) is replaced; its runs are reported
as "died" so the coordinator gives them back at once.
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ablate.engine import closed_stdout
from ablate.engine.events import Event, OnRunEpoch
from ablate.errors import UserError
from ablate.plugin.disabling import disabled_names
from ablate.spec import Execution, RunSpec
from ablate.study.study_file import plugin_files_of

if TYPE_CHECKING:
    from ablate.engine.environment import Environment

# Imported once in the fork server, shared by every worker forked from it.
PRELOAD = [
    "ablate.engine.fork_server",
    "torch",
    "ablate.engine.executors",
    "ablate.train.training",
    "ablate.train.stacked.grouping",
    "ablate.train.stacked.training",
    "ablate.plugin.manager",
    *(f"ablate.plugins.{m}" for m in ("norms", "regularizers", "stopping", "datasets", "models", "augmentations")),
    *(f"ablate.plugins.{m}" for m in ("_networks", "_norm_layers", "_regularizer_layers")),  # their layers
]


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def resolve_jobs(value: str | int) -> int:
    """`--jobs auto` is the usable cores; otherwise a positive count."""
    return usable_cores() if value == "auto" else max(1, int(value))


def _worker(inbox: Any, outbox: Any, prune: Any, plugin_files: list[str], disabled: list[str]) -> None:
    from ablate.engine.executors import child_main  # in the worker only: this module stays torch-free

    closed_stdout.tolerate()  # a plugin printing after `ablate run | head` must not fail its run
    child_main(inbox, outbox, prune, plugin_files, disabled)


@dataclass
class _Child:
    process: mp.process.BaseProcess
    inbox: Any
    prune: Any
    keys: list[str] = field(default_factory=list)


@dataclass
class ProcessPool:
    """N worker processes, each with the torch thread count of ``execution``
    (set before the first unit is submitted; sent with every unit)."""

    jobs: int
    plugin_files: list[str]
    disabled: list[str] = field(default_factory=list)
    execution: Execution = field(default_factory=Execution)
    preload: list[str] = field(default_factory=lambda: list(PRELOAD))

    def __post_init__(self) -> None:
        methods = mp.get_all_start_methods()
        self.ctx: Any = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
        if "forkserver" in methods:
            self.ctx.set_forkserver_preload(self.preload)
        self.outbox: Any = self.ctx.Queue()
        self.on_epoch: OnRunEpoch = lambda key, metrics: False
        self._children: list[_Child] = []
        self._early: list[Event] = []  # events read while waiting for the environment (none expected)
        self._failed: BaseException | None = None
        self._closed = False
        self._starting = threading.Thread(target=self._start, daemon=True)
        self._starting.start()

    def _start(self) -> None:
        """Start the workers in the background: the caller goes on at once."""
        try:
            for _ in range(self.jobs):
                if self._closed:
                    break
                self._children.append(self._spawn())
        except BaseException as exc:  # raised where the workers are first needed
            self._failed = exc
        if self._closed:  # closed while starting (a bad study file): stop what was started
            self._stop(self._children)

    @property
    def children(self) -> list[_Child]:
        self._starting.join()
        if self._failed is not None:
            raise self._failed
        return self._children

    background = True

    @property
    def capacity(self) -> int:
        return self.jobs

    def _spawn(self) -> _Child:
        inbox, prune = self.ctx.Queue(), self.ctx.Value("b", 0)
        process = self.ctx.Process(
            target=_worker, daemon=True, args=(inbox, self.outbox, prune, self.plugin_files, self.disabled)
        )
        process.start()
        return _Child(process, inbox, prune)

    def busy(self) -> int:
        return sum(1 for c in self.children if c.keys)

    def environment(self, specs: list[RunSpec], wanted_device: str) -> Environment:
        """What runs will see in the workers (ablate.engine.environment), asked of the first
        one before anything trains; its error (a data set that will not load) is raised here."""
        child = self.children[0]
        child.inbox.put(("environment", [s.to_json() for s in specs], wanted_device))
        while True:
            try:
                event = self.outbox.get(timeout=1.0)
            except queue.Empty:
                if not child.process.is_alive():
                    raise RuntimeError(f"a worker process exited ({child.process.exitcode}) as it started") from None
                continue
            if event[0] == "environment":
                found: Environment = event[2]
                return found
            if event[0] == "environment_failed":
                raise event[2]
            self._early.append(event)

    def submit(self, keys: list[str], specs: list[RunSpec]) -> None:
        child = next(c for c in self.children if not c.keys)
        child.keys = list(keys)
        child.inbox.put((list(keys), [s.to_json() for s in specs], self.execution))

    def poll(self, timeout: float) -> list[Event]:
        """Outcomes that arrive within ``timeout`` (returning at the first, with
        any already waiting behind it); epoch events are handled here, so the
        coordinator's loop turns once per outcome, not once per epoch."""
        deadline = time.monotonic() + timeout
        out, self._early = self._early, []
        while True:
            left = deadline - time.monotonic()
            try:
                event = self.outbox.get(timeout=left) if left > 0 and not out else self.outbox.get_nowait()
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
        """Stop the workers. A pool still starting (a bad study file) is not waited
        for here, so the error shows at once; it stops what it starts, and the
        process waits for that as it exits: a worker still reading its start-up
        data when multiprocessing's exit handler removes the queues' semaphores
        would print a traceback. Handlers run last-registered first: this one
        before multiprocessing's."""
        self._closed = True
        if self._starting.is_alive():
            atexit.register(self._stop_when_started)
        else:
            self._stop(self._children)

    def _stop_when_started(self) -> None:
        """At exit: the starting thread stops what it started, unless it had passed its
        last look at ``_closed`` as close() set it; stopping twice does no harm."""
        self._starting.join(30)
        self._stop(self._children)

    @staticmethod
    def _stop(children: list[_Child]) -> None:
        for child in children:
            if child.process.is_alive():
                child.process.terminate()
        for child in children:
            child.process.join(timeout=5)


def start_early(study: str, jobs: str | int) -> ProcessPool | None:
    """Worker processes for `--jobs N`, started before the command imports the
    engine; None for one job, or for a study file that cannot be read (the
    command then says why, as it would without a pool)."""

    count = resolve_jobs(jobs)
    if count <= 1:
        return None
    try:
        files = plugin_files_of(study)
    except UserError:
        return None
    return ProcessPool(count, [str(f) for f in files], disabled_names())
