"""Worker processes forked from one process that imported and warmed the figure code
first, so matplotlib's import (0.3 s) and its first figure's font loading are paid
once, not once per worker, and on the core the command leaves idle while it reads
and analyses the runs.

The command starts one process, the workers' parent. It runs ``warm``, forks the
workers (they inherit what it loaded) and waits for them. Each worker has a pipe of
its own for jobs and one for answers; a thread of the command hands the next job to
whichever worker is free, in the order given. A worker ends when its job pipe closes,
whether the command finished or died, so none outlives it. No worker is left unknown:
a worker gets a job only after it has said its pid.

Stopping uses no Python signal handler, which a signal can slip past: the parent dies
of SIGTERM's default action while it warms (it has no workers yet), ignores SIGTERM
from the moment it forks them, and from then on kills and reaps them as soon as the
command closes its control pipe (``kill``) or dies.
"""

from __future__ import annotations

import collections
import gc
import multiprocessing
import os
import pickle
import signal
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import suppress
from multiprocessing.connection import Connection, wait
from typing import Any


class WorkerDied(RuntimeError):
    """A worker ended (killed, out of memory) before it answered for its job."""


class ForkedPool:
    """``workers`` processes forked from a parent that ran ``warm``. They and their parent
    ignore Ctrl-C: sent to the whole process group, it is the command's to handle."""

    def __init__(self, workers: int, warm: Callable[[], None] | None):
        jobs = [multiprocessing.Pipe(duplex=False) for _ in range(workers)]  # (worker's end, command's end)
        answers = [multiprocessing.Pipe(duplex=False) for _ in range(workers)]  # (command's end, worker's end)
        self._send = [writer for _, writer in jobs]
        self._receive = [reader for reader, _ in answers]
        self.pids: dict[int, int] = {}  # worker index -> pid, once it said so
        self._pending: collections.deque[tuple[Future[None], Callable[[Any], None], Any]] = collections.deque()
        self._running: dict[int, Future[None]] = {}
        self._lock = threading.Lock()
        self._closing = False
        self._ended = False
        self._wake_read, self._wake_write = multiprocessing.Pipe(duplex=False)
        control, self._control = os.pipe()  # (the parent's end, the command's): closed, the workers die
        # Held back until the parent has set its own dispositions: one arriving first would run
        # the command's handler (`ablate run`'s SIGTERM handler only asks the run to stop) and be lost.
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        try:
            # os.fork, not multiprocessing.Process: at the command's exit multiprocessing would
            # wait for it, where a closed control pipe is what ends it
            self.parent_pid = os.fork()
            if self.parent_pid == 0:
                ours = [*self._send, *self._receive, self._wake_read, self._wake_write]
                _parent(warm, [r for r, _ in jobs], [w for _, w in answers], control, ours, self._control)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        for workers_end in [r for r, _ in jobs] + [w for _, w in answers]:  # they live in the workers only
            workers_end.close()
        os.close(control)
        self._thread = threading.Thread(target=self._dispatch, name="figure-jobs", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[Any], None], arg: Any) -> Future[None]:
        """``fn(arg)`` in a worker; its exception, if any, is the future's."""
        future: Future[None] = Future()
        with self._lock:
            self._pending.append((future, fn, arg))
        self._wake_write.send(None)
        return future

    def shutdown(self) -> None:
        """Wait for every job, end the workers and their parent."""
        with self._lock:
            self._closing = True
        self._wake_write.send(None)
        self._thread.join()
        self._close_pipes()  # the workers, idle now, see their job pipes close and end
        self._join_parent()
        self._ended = True

    def kill(self) -> None:
        """Kill every worker and the parent now (the parent kills and reaps its workers
        first); the jobs not finished are cancelled. Nothing to do once shut down."""
        if self._ended:
            return
        with self._lock:
            self._closing = True
            for future, _, _ in self._pending:
                future.cancel()
            self._pending.clear()
        with suppress(OSError):
            self._wake_write.send(None)
        os.close(self._control)  # a parent with workers kills and reaps them, then ends
        self._control = -1
        with suppress(ProcessLookupError):
            os.kill(self.parent_pid, signal.SIGTERM)  # one still warming has none: SIGTERM's default ends it
        self._join_parent()
        self._thread.join()
        self._close_pipes()
        self._ended = True

    def _join_parent(self) -> None:
        with suppress(ChildProcessError):
            os.waitpid(self.parent_pid, 0)

    def _close_pipes(self) -> None:
        for conn in (*self._send, *self._receive, self._wake_read, self._wake_write):
            conn.close()
        if self._control >= 0:
            os.close(self._control)
            self._control = -1

    def _dispatch(self) -> None:
        """The command's thread: takes each worker's answers and gives it its next job."""
        live = dict(enumerate(self._receive))
        free: list[int] = []
        while live:
            for conn in wait([*live.values(), self._wake_read]):
                if conn is self._wake_read:
                    self._wake_read.recv()
                    continue
                index = next(i for i, c in live.items() if c is conn)
                if not self._answer(index, live[index]):
                    del live[index]
                    free = [i for i in free if i != index]
                else:
                    free.append(index)
            with self._lock:
                while free and self._pending:
                    self._hand(free.pop(0), *self._pending.popleft())
                if self._closing and not self._pending and not self._running:
                    return
        with self._lock:  # no worker left (they could not start, or all died): nothing would run these
            for future, _, _ in self._pending:
                future.set_exception(WorkerDied("no figure worker is left to draw it"))
            self._pending.clear()

    def _answer(self, index: int, conn: Connection) -> bool:
        """Read one answer of worker ``index``: False where the worker has ended."""
        try:
            kind, value = conn.recv()
        except (EOFError, OSError):
            with self._lock:
                future = self._running.pop(index, None)
            if future is not None:
                future.set_exception(WorkerDied(f"figure worker {self.pids.get(index)} ended mid-figure"))
            return False
        if kind == "ready":
            self.pids[index] = value
            return True
        with self._lock:
            future = self._running.pop(index, None)
        if future is not None and value is None:
            future.set_result(None)
        elif future is not None:
            future.set_exception(value)
        return True

    def _hand(self, index: int, future: Future[None], fn: Callable[[Any], None], arg: Any) -> None:
        try:
            self._send[index].send((fn, arg))
        except (OSError, ValueError) as exc:  # the worker is gone: its end of the pipe closed
            future.set_exception(WorkerDied(f"figure worker {self.pids.get(index)} is gone: {exc}"))
            return
        self._running[index] = future


def _parent(
    warm: Callable[[], None] | None,
    jobs: list[Connection],
    answers: list[Connection],
    control: int,
    commands_ends: list[Connection],
    commands_control: int,
) -> None:
    """The forked parent's whole life (it never returns into the command's code): warm,
    fork the workers, reap them; once the control pipe closes (``kill``, or the command
    died), kill and reap them first."""
    code = 0
    try:
        for conn in commands_ends:  # a worker's job pipe closes when the command closes its end
            conn.close()
        os.close(commands_control)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the workers inherit it
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # while it warms, a kill ends it at once
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})  # held back by the command
        if warm is not None:
            warm()
        gc.freeze()  # what was imported is never garbage: no worker's collection walks it again
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # with workers, only the control pipe stops it
        alive: dict[int, int] = {}  # a pipe each worker holds open while it lives -> its pid
        for index in range(len(jobs)):
            watch, held_open = os.pipe()
            pid = os.fork()
            if pid == 0:
                for fd in (watch, control, *alive):
                    os.close(fd)
                _worker(jobs, answers, index)
            os.close(held_open)
            alive[watch] = pid
        for conn in (*jobs, *answers):
            conn.close()
        _reap(alive, control)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        os._exit(code)


def _reap(alive: dict[int, int], control: int) -> None:
    """Reap each worker as it ends; once the control pipe closes, kill the rest first."""
    while alive:
        ready = wait([control, *alive])
        if control in ready:
            for pid in alive.values():
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for watch in [fd for fd in alive if control in ready or fd in ready]:
            with suppress(ChildProcessError):
                os.waitpid(alive.pop(watch), 0)
            os.close(watch)


def _worker(jobs: list[Connection], answers: list[Connection], index: int) -> None:
    """A forked worker: says its pid, then runs jobs until its job pipe closes. Never returns."""
    code = 0
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for i, conn in enumerate((*jobs, *answers)):
            if i not in (index, len(jobs) + index):
                conn.close()
        mine, out = jobs[index], answers[index]
        out.send(("ready", os.getpid()))
        while True:
            try:
                fn, arg = mine.recv()
            except EOFError:
                break
            try:
                fn(arg)
                out.send(("done", None))
            except Exception as exc:  # the command re-raises it, with this worker's traceback
                out.send(("done", _picklable(exc)))
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _picklable(exc: Exception) -> Exception:
    """The exception with the worker's traceback as a note, or where it cannot cross a
    pipe, a RuntimeError saying what it was."""
    where = "".join(traceback.format_exception(exc)).rstrip()
    try:
        exc.add_note(f"in figure worker {os.getpid()}:\n{where}")
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"in figure worker {os.getpid()}:\n{where}")
    return exc
