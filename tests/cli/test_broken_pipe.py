"""A reader that closes stdout early (`ablate plan study.toml | head -1`) does not
crash a command: one that only prints ends quietly with 141 (128 + SIGPIPE),
`ablate run` trains every run, stores it and writes the report; no traceback
and no "Exception ignored ... BrokenPipeError" at the interpreter's exit."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from support import DROPOUT_FACTOR, one_epoch_study

from ablate.cli import EXIT_STDOUT_CLOSED
from ablate.engine import closed_stdout

STUDY = one_epoch_study("pipe") + DROPOUT_FACTOR


def _ablate(*args: object) -> list[str]:
    return [sys.executable, "-m", "ablate", *map(str, args)]


def _quiet(stderr: str) -> None:
    for noise in ("Traceback", "Exception ignored", "BrokenPipeError", "internal error"):
        assert noise not in stderr, stderr


def _with_reader_gone(cwd: Path, *args: object) -> subprocess.CompletedProcess[str]:
    """Run with stdout a pipe whose reader has already closed it: every write fails."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(_ablate(*args), stdout=write, stderr=subprocess.PIPE, text=True, cwd=cwd, timeout=300)
    finally:
        os.close(write)


def _first_line_then_close(cwd: Path, *args: object) -> tuple[str, int, str]:
    """As `| head -1`: read one line, close the pipe, wait for the command."""
    proc = subprocess.Popen(_ablate(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
    assert proc.stdout is not None and proc.stderr is not None
    line = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    return line, proc.wait(timeout=300), err


@pytest.fixture
def study(tmp_path: Path) -> Path:
    path = tmp_path / "study.toml"
    path.write_text(STUDY)
    return path


def test_the_exit_status_is_the_shells_for_a_command_killed_by_sigpipe():
    assert EXIT_STDOUT_CLOSED == 141


@pytest.mark.parametrize(
    "args",
    [("plugins",), ("plan", "{study}", "--no-calibrate"), ("run", "{study}", "--dry-run")],
    ids=["plugins", "plan", "dry-run"],
)
def test_a_printing_command_whose_reader_left_ends_quietly_with_141(tmp_path, study, args):
    done = _with_reader_gone(tmp_path, *(a.format(study=study) for a in args))
    _quiet(done.stderr)
    assert done.returncode == 141, done.stderr


def test_run_whose_reader_left_trains_everything_and_writes_the_report(tmp_path, study):
    done = _with_reader_gone(tmp_path, "run", study, "--out", tmp_path / "out")
    _quiet(done.stderr)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "index.html").is_file()
    table = pd.read_csv(tmp_path / "out" / "results.csv")
    assert len(table) == 2 and (table["status"] == "complete").all()


def test_run_read_for_one_line_like_head_goes_on_to_the_end(tmp_path, study):
    line, code, err = _first_line_then_close(tmp_path, "run", study, "--out", tmp_path / "out")
    assert line.startswith("study pipe: 2 arms x 1 seeds = 2 runs")
    _quiet(err)
    assert code == 0, err
    assert (tmp_path / "out" / "index.html").is_file()
    assert len(pd.read_csv(tmp_path / "out" / "results.csv")) == 2


def _broken_stdout(monkeypatch) -> io.TextIOWrapper:
    """A real stdout on a pipe whose reader is gone (its writes fail with EPIPE)."""
    read, write = os.pipe()
    os.close(read)
    stream = io.TextIOWrapper(io.FileIO(write, "w"), write_through=False)
    monkeypatch.setattr(sys, "stdout", stream)
    return stream


def test_keep_going_drops_the_output_and_points_the_descriptor_at_devnull(monkeypatch):
    stream = _broken_stdout(monkeypatch)
    with closed_stdout.guard(keep_going=True):
        print("progress", flush=True)
        print("more progress", flush=True)
        assert sys.stdout is not stream
    assert sys.stdout is stream
    assert os.path.samefile(f"/proc/self/fd/{stream.fileno()}", os.devnull)
    stream.write("at exit")
    stream.flush()  # what the interpreter does at exit: no BrokenPipeError any more
    stream.close()


def test_without_keep_going_the_command_ends_at_the_first_failed_write(monkeypatch):
    stream = _broken_stdout(monkeypatch)
    reached = []
    with pytest.raises(closed_stdout.StdoutClosed), closed_stdout.guard(keep_going=False):
        print("plan", flush=True)
        reached.append(True)
    assert not reached and sys.stdout is stream
    stream.close()


def test_a_broken_pipe_that_is_not_stdout_stays_an_error(monkeypatch):
    """A worker's pipe or a database socket breaking is a real failure."""
    with pytest.raises(BrokenPipeError), closed_stdout.guard(keep_going=True):
        raise BrokenPipeError("a worker's pipe")
