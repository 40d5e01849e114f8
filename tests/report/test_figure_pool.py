"""The figure workers' pool: workers forked from one parent that ran the warm-up once,
jobs handed to whichever worker is free, a worker's failure re-raised in the command,
and no process left behind whether the pool is shut down, killed, or its command dies."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import running

from ablate.report.figure_pool import ForkedPool, WorkerDied

pytestmark = pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="the pool forks its workers"
)
WARMED: list[int] = []


def warm() -> None:
    WARMED.append(os.getpid())  # in the parent only: the workers inherit the list as it was


def note(path: Path) -> None:
    """A job: which process ran it, its parent, and what the warm-up left it (slow enough
    that both workers get jobs)."""
    time.sleep(0.2)
    path.write_text(f"{os.getpid()} {os.getppid()} {WARMED}")


def fail(message: str) -> None:
    raise ValueError(message)


def stall(path: Path) -> None:
    path.write_text(str(os.getpid()))
    time.sleep(60)


def wait_for(condition, seconds: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_workers_are_forked_from_the_parent_that_warmed_and_share_the_jobs(tmp_path):
    pool = ForkedPool(2, warm)
    futures = [pool.submit(note, tmp_path / f"job{i}") for i in range(6)]
    for future in futures:
        future.result(timeout=30)
    pool.shutdown()
    seen = [(tmp_path / f"job{i}").read_text().split(" ", 2) for i in range(6)]
    parent = pool.parent_pid
    assert {ppid for _, ppid, _ in seen} == {str(parent)}
    assert {warmed for _, _, warmed in seen} == {f"[{parent}]"}  # warmed once, in the parent
    assert {pid for pid, _, _ in seen} <= {str(p) for p in pool.pids.values()} and len(pool.pids) == 2
    assert WARMED == []  # never in the command
    assert not running(parent) and not any(running(p) for p in pool.pids.values())


def test_a_jobs_exception_is_raised_in_the_command_with_the_workers_traceback(tmp_path):
    pool = ForkedPool(2, None)
    bad, good = pool.submit(fail, "no such column"), pool.submit(note, tmp_path / "after")
    with pytest.raises(ValueError, match="no such column") as caught:
        bad.result(timeout=30)
    assert any("in figure worker" in n and "in fail" in n for n in caught.value.__notes__)  # where it went wrong
    good.result(timeout=30)  # the worker that failed goes on to the next job
    pool.shutdown()


def test_kill_stops_a_busy_worker_and_leaves_nothing_running(tmp_path):
    pool = ForkedPool(2, None)
    busy = pool.submit(stall, tmp_path / "busy")
    queued = [pool.submit(stall, tmp_path / f"q{i}") for i in range(3)]
    wait_for(lambda: (tmp_path / "busy").exists() and (tmp_path / "q0").exists())
    started = time.monotonic()
    pool.kill()
    assert time.monotonic() - started < 10
    assert isinstance(busy.exception(timeout=5), WorkerDied)
    assert all(f.cancelled() for f in queued[1:])  # never handed out
    assert not running(pool.parent_pid) and not any(running(p) for p in pool.pids.values())
    pool.kill()  # a second time does nothing


def test_a_worker_killed_from_outside_fails_its_job_and_the_others_finish(tmp_path):
    pool = ForkedPool(2, None)
    doomed = pool.submit(stall, tmp_path / "doomed")
    wait_for(lambda: (tmp_path / "doomed").exists())
    os.kill(int((tmp_path / "doomed").read_text()), signal.SIGKILL)  # out of memory, say
    with pytest.raises(WorkerDied):
        doomed.result(timeout=30)
    rest = [pool.submit(note, tmp_path / f"r{i}") for i in range(3)]
    for future in rest:
        future.result(timeout=30)
    pool.shutdown()


def test_no_worker_outlives_a_command_that_dies(tmp_path):
    code = (
        "import os, signal, time\n"
        "from ablate.report.figure_pool import ForkedPool\n"
        "pool = ForkedPool(2, None)\n"
        "jobs = [pool.submit(time.sleep, 0.5) for _ in range(2)]\n"  # long enough that both workers take one
        "[job.result(timeout=30) for job in jobs]\n"
        "print('pids', pool.parent_pid, *pool.pids.values(), flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL
    pids = [int(p) for p in done.stdout.split("pids", 1)[1].split()]
    assert len(pids) == 3, done.stdout
    wait_for(lambda: not any(running(p) for p in pids), seconds=10)


def broken_warm() -> None:
    raise ImportError("no matplotlib here")


def test_jobs_fail_rather_than_wait_forever_where_the_workers_never_start(tmp_path):
    pool = ForkedPool(2, broken_warm)
    future = pool.submit(note, tmp_path / "never")
    with pytest.raises(WorkerDied, match="no figure worker is left"):
        future.result(timeout=30)
    pool.kill()
    assert not running(pool.parent_pid)


def test_a_kill_at_once_ends_the_parent_even_where_the_command_handles_sigterm():
    """The parent inherits the command's signal handlers (`ablate`'s own SIGTERM handler asks
    a run to stop, and returns): a kill sent before the parent has its own is held, not lost."""
    code = (
        "import signal\n"
        "from ablate.report.figure_pool import ForkedPool\n"
        "signal.signal(signal.SIGTERM, lambda signum, frame: None)\n"
        "for _ in range(20):\n"
        "    ForkedPool(2, None).kill()\n"
        "print('ended')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ended", done.stderr
