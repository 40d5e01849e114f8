"""A worker process's stdout drops what a plugin prints once the reader is gone
instead of failing its run."""

from __future__ import annotations

import io
import sys

from ablate.engine import closed_stdout


class ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError


def test_a_worker_keeps_going_when_its_stdout_reader_left(monkeypatch):
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    closed_stdout.tolerate()
    print("a plugin's progress line")  # would raise BrokenPipeError and fail the run
    print("and another")
    closed_stdout.tolerate()  # once is enough: not wrapped twice
    assert not isinstance(sys.stdout._stream, closed_stdout._Guarded)
