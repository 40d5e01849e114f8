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
    """Counts finished runs and prints one line for each."""

    total: int
    already: int
    log: Callable[[str], None]
    finished: int = 0
    started: float = field(default_factory=time.perf_counter)

    def report(self, run: RunLike, text: str) -> None:
        self.finished += 1
        elapsed = time.perf_counter() - self.started
        left = max(self.total - self.already - self.finished, 0)
        eta = elapsed / self.finished * left
        stage = f"{run.stage} " if run.stage != "main" else ""
        self.log(f"[{self.already + self.finished}/{self.total}] {stage}{run.arm.name} seed={run.seed}: "
                 f"{text}  (eta {eta:.0f}s)")
