"""The processes that draw a report's figures: forked from one parent that loaded the
figure code (``figure_pool``), deaf to Ctrl-C (sent to the whole process group, it is
the command's to handle), and killed by the command when it stops, so it stops at once
and no worker is left waiting. A figure is drawn under a temporary name
(``partial_path``) and renamed when whole.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ablate.report.figure_pool import ForkedPool

Job = tuple[str, tuple[Any, ...], Path]  # (function name in figures.py, its arguments, the file)


def fork_pool(jobs: int, workers: int | None) -> ForkedPool | None:
    """Workers forked from a parent that loaded and warmed the figure code (``warm_figures``),
    so the command never loads matplotlib; None where one process is as good or the
    platform cannot fork."""
    workers = min(workers or default_workers(), jobs)
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return None
    with _interrupts_deferred():  # the parent starts here: never unknown to the command
        return ForkedPool(workers, warm_figures)


def default_workers() -> int:
    return min(os.cpu_count() or 1, 4)


@contextmanager
def early_workers(workers: int | None = None) -> Iterator[ForkedPool | None]:
    """Figure workers started before the report reads its runs, their parent loading
    matplotlib and the figure code and drawing a first figure on the cores the command
    leaves idle while it reads and analyses; for ``rendering``'s pool. Killed on the way
    out unless the figures used them (``drawing_forked`` shuts the pool down); None where
    forking is not worth it."""
    pool = fork_pool(workers or default_workers(), workers)
    try:
        yield pool
    finally:
        if pool is not None:
            _stop(pool, [])


def warm_figures() -> None:
    """The figure code loaded and matplotlib warmed (``figures.warm_up``): the workers' parent's work."""
    import ablate.report.figures as figures  # matplotlib: in the workers' parent, not the command

    figures.warm_up()


def drawing_forked(
    pool: ForkedPool,
    render: Callable[[Job], None],
    tasks: list[Job],
    written: dict[str, str],
    drawn: list[str],
) -> Iterator[dict[str, str]]:
    """``rendering``'s forked half: submit every figure, yield while they draw, wait for
    them (a worker's exception re-raised here), adding each finished file's name to
    ``drawn``. On any exception, Ctrl-C included, the workers are killed before it goes on."""
    futures: list[Future[None]] = []
    try:
        futures = [pool.submit(render, task) for task in tasks]
        yield written
        for task, future in zip(tasks, futures):
            future.result()
            drawn.append(task[2].name)
        pool.shutdown()
    except BaseException:
        _stop(pool, tasks)
        finished = [task[2].name for task, future in zip(tasks, futures) if _succeeded(future)]
        drawn.extend(name for name in finished if name not in drawn)
        raise


def _succeeded(future: Future[None]) -> bool:
    return future.done() and not future.cancelled() and future.exception() is None


def _stop(pool: ForkedPool, tasks: list[Job]) -> None:
    """Kill the workers and their parent (a figure half drawn dies with its temporary
    file, removed here) and wait for them: nothing is left running or waiting. A pool
    already shut down has nothing left to kill."""
    with _interrupts_deferred():  # a second Ctrl-C waits the few milliseconds this takes
        pool.kill()
    for pid in pool.pids.values():
        for _, _, path in tasks:
            partial_path(path, pid).unlink(missing_ok=True)


@contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) back until the block ends, then raise it as it would have been.
    Python runs signal handlers in the main thread only; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is None:
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught and callable(previous):
        previous(signal.SIGINT, None)
    elif caught and previous == signal.SIG_DFL:  # no handler of Python's: the signal's own default
        os.kill(os.getpid(), signal.SIGINT)


def remove_orphans(out_dir: Path) -> None:
    """Temporary files of a process that was killed mid-write (SIGKILL, out of memory):
    their pid is in their name, and one still running keeps its own."""
    for path in out_dir.glob(".*.partial*"):
        pid = next((int(part) for part in path.name.split(".") if part.isdigit()), None)
        if pid is not None and not _alive(pid):
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def partial_path(path: Path, pid: int) -> Path:
    """Where process ``pid`` writes ``path`` before it is complete (ends in .png, which
    tells matplotlib the format)."""
    return path.with_name(f".{path.name}.{pid}.partial.png")
