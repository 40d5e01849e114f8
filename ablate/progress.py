"""Progress lines while a study trains: one per finished run, with an
estimate of the time left from the runs finished so far."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


class _ArmLike(Protocol):
    @property
    def name(self) -> str: ...


class RunLike(Protocol):
    @property
    def arm(self) -> _ArmLike: ...
    @property
    def seed(self) -> int: ...
    @property
    def stage(self) -> str: ...


@dataclass
class Progress:
    """Counts finished runs and prints one line for each (the plain form, for
    logs and pipes); ``started``, ``epoch`` and ``note`` let a live display show more."""

    total: int
    already: int
    log: Callable[[str], None]
    finished_runs: int = 0
    started_at: float = field(default_factory=time.perf_counter)

    def started(self, run: RunLike) -> None:
        """A run began training (the plain form says nothing until it ends)."""

    def epoch(self, run: RunLike, metrics: dict[str, float]) -> None:
        """A run finished an epoch (the plain form says nothing)."""

    def note(self, text: str) -> None:
        self.log(text)

    def eta(self) -> float:
        elapsed = time.perf_counter() - self.started_at
        left = max(self.total - self.already - self.finished_runs, 0)
        return elapsed / max(self.finished_runs, 1) * left

    def close(self) -> None:
        """Stop any live display."""

    def finished(self, run: RunLike, text: str) -> None:
        self.finished_runs += 1
        stage = f"{run.stage} " if run.stage != "main" else ""
        self.log(
            f"[{self.already + self.finished_runs}/{self.total}] {stage}{run.arm.name} seed={run.seed}: "
            f"{text}  (eta {self.eta():.0f}s)"
        )


class LiveProgress(Progress):
    """On a terminal: a bar for the whole study with its ETA and one line per run
    in training with its epoch (rich), finished runs printed above them."""

    def __init__(self, total: int, already: int, log: Callable[[str], None]):
        super().__init__(total, already, log)
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as Bars

        self.bars = Bars(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True
        )
        self.overall = self.bars.add_task("study", total=max(total - already, 1))
        self.running: dict[tuple[str, int, str], Any] = {}
        self.bars.start()

    def _id(self, run: RunLike) -> tuple[str, int, str]:
        return (run.arm.name, run.seed, run.stage)

    def started(self, run: RunLike) -> None:
        spec = getattr(run, "spec", None)
        epochs = spec.train.get("epochs") if spec is not None else None
        self.running[self._id(run)] = self.bars.add_task(f"  {run.arm.name} seed={run.seed}", total=epochs)

    def epoch(self, run: RunLike, metrics: dict[str, float]) -> None:
        task = self.running.get(self._id(run))
        if task is not None:
            self.bars.update(
                task,
                completed=int(metrics["epoch"]),
                description=f"  {run.arm.name} seed={run.seed} val {metrics['val_accuracy']:.3f}",
            )

    def note(self, text: str) -> None:
        self.bars.console.print(text)

    def finished(self, run: RunLike, text: str) -> None:
        task = self.running.pop(self._id(run), None)
        if task is not None:
            self.bars.remove_task(task)
        self.finished_runs += 1
        self.bars.advance(self.overall)
        stage = f"{run.stage} " if run.stage != "main" else ""
        self.bars.console.print(
            f"[{self.already + self.finished_runs}/{self.total}] {stage}{run.arm.name} seed={run.seed}: {text}",
            markup=False,
            highlight=False,
        )

    def close(self) -> None:
        self.bars.stop()


def make_progress(total: int, already: int, log: Callable[[str], None], live: bool) -> Progress:
    """Live bars on a terminal; plain lines in logs and pipes (CI)."""
    return LiveProgress(total, already, log) if live else Progress(total, already, log)
