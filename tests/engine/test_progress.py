"""Progress lines: the time left is reckoned in epochs, so the seeds of a stack,
which finish together, do not make the first estimate ten times too long."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ablate.engine.progress import LiveProgress, Progress


@dataclass(frozen=True)
class _Arm:
    name: str


@dataclass(frozen=True)
class _Run:
    arm: _Arm
    seed: int
    stage: str = "main"
    spec: Any = None


@dataclass(frozen=True)
class _Spec:
    train: dict = field(default_factory=lambda: {"epochs": 10})


def _runs(arm: str, seeds: int) -> list[_Run]:
    return [_Run(_Arm(arm), seed, spec=_Spec()) for seed in range(seeds)]


def _eta(line: str) -> float:
    return float(line.rsplit("(eta ", 1)[1].rstrip("s)"))


def test_a_stack_that_finishes_together_leaves_the_estimate_in_epochs():
    """6 runs of 10 epochs: a stack of 3 trains its 30 epochs in 10 s, then its runs
    finish together. About 10 s are left (3 runs x 10 epochs at 3 epochs a second);
    by finished runs the first line would say 50 s."""
    lines: list[str] = []
    progress = Progress(total=6, already=0, log=lines.append)
    first, second = _runs("a", 3), _runs("b", 3)
    for run in first:
        progress.started(run)
    for _ in range(10):
        for run in first:
            progress.epoch(run, {"epoch": 1.0})
    progress.started_at = time.perf_counter() - 10.0
    for run in first:
        progress.finished(run, "done")
    assert [round(_eta(line)) for line in lines] == [10, 10, 10]
    for run in second:
        progress.started(run)
    for _ in range(5):
        for run in second:
            progress.epoch(run, {"epoch": 1.0})
    progress.started_at = time.perf_counter() - 15.0  # 45 epochs in 15 s; 15 left
    progress.finished(second[0], "stopped early at epoch 5")  # gives back its 5 epochs
    assert round(_eta(lines[-1])) == 3  # the two others' 10 epochs at 3 a second


def test_without_epochs_the_estimate_is_by_finished_runs():
    lines: list[str] = []
    progress = Progress(total=4, already=0, log=lines.append)
    progress.started_at = time.perf_counter() - 8.0
    progress.finished(_Run(_Arm("a"), 0), "done")  # no spec, no epochs reported
    assert round(_eta(lines[0])) == 24


def test_the_live_display_shows_the_same_estimate():
    printed: list[str] = []
    progress = LiveProgress(total=3, already=0, log=printed.append)
    try:
        runs = _runs("a", 3)
        for run in runs:
            progress.started(run)
        for run in runs:
            progress.epoch(run, {"epoch": 1.0, "val_accuracy": 0.5})
        progress.finished(runs[0], "done")
        overall = progress.bars.tasks[0]
        assert overall.fields["eta"].startswith("eta ") and overall.completed == 1
        assert len(progress.bars.tasks) == 3  # the study's bar and the two runs still training
    finally:
        progress.close()
