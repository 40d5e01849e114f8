"""Progress lines while a study trains: one per finished run, with an
estimate of the time left from the epochs trained so far."""

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
    logs and pipes); ``started``, ``epoch`` and ``note`` let a live display show more.

    The time left is reckoned in epochs, not runs: the seeds of a stack finish
    together, so a count of finished runs jumps by a dozen at once and an estimate
    from it starts at ten times the truth. Epochs arrive steadily from every run in
    training, and a run that stops early gives back the epochs it did not train."""

    total: int
    already: int
    log: Callable[[str], None]
    finished_runs: int = 0
    started_at: float = field(default_factory=time.perf_counter)
    epochs_done: int = 0  # epochs reported by the runs of this command
    _left: dict[tuple[str, int, str], int] = field(default_factory=dict)  # per run in training: epochs it may train
    _planned: tuple[int, int] = (0, 0)  # (runs started, their epochs): a run's epochs on average

    def _id(self, run: RunLike) -> tuple[str, int, str]:
        return (run.arm.name, run.seed, run.stage)

    def started(self, run: RunLike) -> None:
        """A run began training (the plain form says nothing until it ends)."""
        epochs = _max_epochs(run)
        if epochs is not None:
            self._left[self._id(run)] = epochs
            self._planned = (self._planned[0] + 1, self._planned[1] + epochs)

    def epoch(self, run: RunLike, metrics: dict[str, float]) -> None:
        """A run finished an epoch (the plain form says nothing)."""
        self.epochs_done += 1
        key = self._id(run)
        if key in self._left:
            self._left[key] = max(self._left[key] - 1, 0)

    def note(self, text: str) -> None:
        self.log(text)

    def eta(self) -> float:
        elapsed = time.perf_counter() - self.started_at
        left = max(self.total - self.already - self.finished_runs, 0)
        started, epochs = self._planned
        if not self.epochs_done or not started:  # nothing reported per epoch: by runs
            return elapsed / max(self.finished_runs, 1) * left
        waiting = max(left - len(self._left), 0)  # not started yet: as many epochs as those that did
        epochs_left = sum(self._left.values()) + waiting * epochs / started
        return elapsed / self.epochs_done * epochs_left

    def close(self) -> None:
        """Stop any live display."""

    def finished(self, run: RunLike, text: str) -> None:
        self.log(f"{self._count_finished(run, text)}  (eta {self.eta():.0f}s)")

    def _count_finished(self, run: RunLike, text: str) -> str:
        """Count the run as finished (its epochs not trained are given back); its line."""
        self._left.pop(self._id(run), None)
        self.finished_runs += 1
        stage = f"{run.stage} " if run.stage != "main" else ""
        return f"[{self.already + self.finished_runs}/{self.total}] {stage}{run.arm.name} seed={run.seed}: {text}"


def _max_epochs(run: RunLike) -> int | None:
    spec = getattr(run, "spec", None)
    epochs = spec.train.get("epochs") if spec is not None else None
    return int(epochs) if isinstance(epochs, int | float) else None


class LiveProgress(Progress):
    """On a terminal: a bar for the whole study with its ETA and one line per run
    in training with its epoch (rich), finished runs printed above them."""

    def __init__(self, total: int, already: int, log: Callable[[str], None]):
        super().__init__(total, already, log)
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
        from rich.progress import Progress as Bars

        # the time left is ours (by epochs), not rich's (by finished runs, which stacks finish in bursts)
        self.bars = Bars(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[eta]}"),
            transient=True,
        )
        self.overall = self.bars.add_task("study", total=max(total - already, 1), eta="")
        self.running: dict[tuple[str, int, str], Any] = {}
        self.bars.start()

    def started(self, run: RunLike) -> None:
        super().started(run)
        self.running[self._id(run)] = self.bars.add_task(
            f"  {run.arm.name} seed={run.seed}", total=_max_epochs(run), eta=""
        )

    def epoch(self, run: RunLike, metrics: dict[str, float]) -> None:
        super().epoch(run, metrics)
        task = self.running.get(self._id(run))
        if task is not None:
            self.bars.update(
                task,
                completed=int(metrics["epoch"]),
                description=f"  {run.arm.name} seed={run.seed} val {metrics['val_accuracy']:.3f}",
            )
        self.bars.update(self.overall, eta=f"eta {self.eta():.0f}s")

    def note(self, text: str) -> None:
        self.bars.console.print(text)

    def finished(self, run: RunLike, text: str) -> None:
        task = self.running.pop(self._id(run), None)
        if task is not None:
            self.bars.remove_task(task)
        line = self._count_finished(run, text)
        self.bars.update(self.overall, advance=1, eta=f"eta {self.eta():.0f}s")
        self.bars.console.print(line, markup=False, highlight=False)

    def close(self) -> None:
        self.bars.stop()


def make_progress(total: int, already: int, log: Callable[[str], None], live: bool) -> Progress:
    """Live bars on a terminal; plain lines in logs and pipes (CI)."""
    return LiveProgress(total, already, log) if live else Progress(total, already, log)
