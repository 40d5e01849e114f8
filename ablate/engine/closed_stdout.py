"""A reader that stops reading (`ablate plan study.toml | head -1`) closes the
pipe; the next write to it raises BrokenPipeError (Python ignores SIGPIPE).

``guard`` puts a thin wrapper in front of ``sys.stdout`` while a command runs.
On the first failed write it points file descriptor 1 at /dev/null, as Python's
note on SIGPIPE advises (https://docs.python.org/3/library/signal.html#note-on-sigpipe),
so no later write and no flush at exit fails (no "Exception ignored ...
BrokenPipeError" when the interpreter ends). Then, with ``keep_going`` (`ablate
run`, `ablate worker`: training must not stop because nobody reads its
progress), the write is dropped and the command carries on; otherwise
``StdoutClosed`` ends the command, which the command line turns into a quiet exit.

Only stdout's own failure is caught: a BrokenPipeError from anything else (a
worker's pipe, a database socket) stays an error.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO


class StdoutClosed(BaseException):
    """Standard output was closed by its reader; the command's output is cut short. A
    BaseException, as KeyboardInterrupt is, so no ``except Exception`` on the way (a
    plugin's print during calibration) takes it for a failed run."""


def discard(stream: TextIO) -> None:
    """Send the stream's file descriptor (and what it still buffers) to /dev/null."""
    with contextlib.suppress(OSError, ValueError, AttributeError):  # no descriptor: a test's StringIO
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stream.fileno())
        finally:
            os.close(devnull)


class _Guarded:
    """``sys.stdout`` as it was, except that a closed pipe is handled as above."""

    def __init__(self, stream: TextIO, keep_going: bool):
        self._stream, self._keep_going = stream, keep_going
        self.closed_by_reader = False

    def _failed(self) -> None:
        if not self.closed_by_reader:
            self.closed_by_reader = True
            discard(self._stream)
        if not self._keep_going:
            raise StdoutClosed

    def write(self, text: str) -> int:
        if self.closed_by_reader and self._keep_going:
            return len(text)
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._failed()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._failed()

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, ...: the stream's own
        return getattr(self._stream, name)


def tolerate() -> None:
    """For a worker process, for good: what it prints once its stdout's reader left is
    dropped, so a plugin's print cannot fail the run it trains."""
    if not isinstance(sys.stdout, _Guarded):
        sys.stdout = _Guarded(sys.stdout, keep_going=True)


@contextlib.contextmanager
def guard(keep_going: bool) -> Iterator[None]:
    """Run a command with stdout guarded; what it printed is flushed before the end,
    so a pipe closed after its last line is noticed here too."""
    original = sys.stdout
    guarded = _Guarded(original, keep_going)
    sys.stdout = guarded  # a TextIO in all a caller uses (write, flush; the rest is the stream's)
    try:
        yield
        guarded.flush()
    finally:
        if sys.stdout is guarded:
            sys.stdout = original
