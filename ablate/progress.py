"""Progress lines while a study trains: one per finished run, with an
estimate of the time left from the runs finished so far."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


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

    def finished(self, run: RunLike, text: str) -> None:
        self.finished_runs += 1
        stage = f"{run.stage} " if run.stage != "main" else ""
        self.log(f"[{self.already + self.finished_runs}/{self.total}] {stage}{run.arm.name} seed={run.seed}: "
                 f"{text}  (eta {self.eta():.0f}s)")
