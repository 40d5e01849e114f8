"""Ctrl-C while the report's figures draw stops the command at once: status 130 and
its usual line, no traceback, no figure process left behind, and no half-written
figure kept or recorded as current, so the next report draws what is missing.

Before, the forked figure workers got the terminal's SIGINT too: one dying in the
pool's protocol could hang the command for good, and a figure cut off mid-write
stayed in the folder under its own name."""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import pytest
from support import _study, descendants

from ablate.report import write_report
from ablate.report.figure_files import DIGESTS, FIGURES

ARMS = ["baseline", "bn", "ln"]
SLOW = "fig_learning_curves.png"  # among the first figures submitted: one worker stays on it, the other draws the rest
PNG_END = b"IEND\xaeB`\x82"

pytestmark = pytest.mark.skipif(
    os.name != "posix" or "fork" not in multiprocessing.get_all_start_methods(),
    reason="figures draw in forked processes only where the platform forks",
)

# The real `ablate report` command line (its KeyboardInterrupt handling, status and exit
# path), reporting a synthetic study; the learning curves figure writes half its bytes
# under the name it was given, says so in a marker file, then takes a minute.
SCRIPT = f"""
import os, pickle, sys, time
from pathlib import Path

tests, out, study, marker = sys.argv[1:5]
sys.path.insert(0, tests)
os.cpu_count = lambda: 2  # two figure workers on any machine

import ablate.cli as cli
import ablate.report.figures as figures
from ablate.report import write_report

real_save = figures.save_figure


def save(fig, path):
    if {SLOW!r} not in Path(path).name:
        return real_save(fig, path)
    import io

    buf = io.BytesIO()
    real_save(fig, buf)
    data = buf.getvalue()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
        f.flush()
        Path(marker).touch()
        time.sleep(60)
        f.write(data[len(data) // 2 :])


figures.save_figure = save
cli.dispatch = lambda args: write_report(Path(out), *pickle.loads(Path(study).read_bytes())) and 0
sys.argv = ["ablate", "report", out]
cli.program()
"""


def _expected() -> set[str]:
    """The figures the synthetic study gets."""
    from ablate.report.analysis import analyse
    from ablate.report.figure_files import figure_jobs

    table, histories, record = _study(ARMS, [0, 1, 2])
    return {FIGURES[key] for key, _, _ in figure_jobs(analyse(table, record), histories)}


def _complete_png(path: Path) -> bool:
    return path.read_bytes().endswith(PNG_END)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _figures_left(out: Path) -> set[str]:
    """Every file in the folder with a figure's name or a PNG in its name."""
    return {p.name for p in out.iterdir() if ".png" in p.name}


def test_ctrl_c_while_figures_draw_exits_130_at_once_and_leaves_no_process_or_half_figure(tmp_path):
    out, study, marker = tmp_path / "r", tmp_path / "study.pickle", tmp_path / "drawing"
    study.write_bytes(pickle.dumps(_study(ARMS, [0, 1, 2])))
    tests = Path(__file__).resolve().parents[1]
    expected = _expected()
    others = expected - {SLOW}
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(tests), str(out), str(study), str(marker)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        deadline = time.monotonic() + 60
        # Both workers busy or done: one mid-way through writing the slow figure, the
        # other through every other figure (then idle in the pool's queue).
        while not (marker.exists() and others <= {p.name for p in out.glob("fig_*.png")}):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the figures never started drawing"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole foreground process group
        sent = time.monotonic()
        _, err = proc.communicate(timeout=10)
        took = time.monotonic() - sent
        gone = time.monotonic() + 2
        while _group_alive(proc.pid) and time.monotonic() < gone:
            time.sleep(0.02)
        assert not _group_alive(proc.pid), "a figure process outlived the command"
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    assert proc.returncode == 130, err
    assert took < 10, f"took {took:.1f}s to stop"  # it hung forever; a loaded machine may be slow
    assert err.strip().endswith("interrupted")  # `ablate report` trains nothing: no word of stored runs
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    # No half-written figure under a figure's name, no temporary file left behind.
    left = _figures_left(out)
    assert left <= expected, left
    assert all(_complete_png(out / name) for name in left)
    recorded = set(json.loads((out / DIGESTS).read_text(encoding="utf-8"))) if (out / DIGESTS).exists() else set()
    assert SLOW not in recorded and recorded <= left

    # The next report draws exactly what was not recorded as current, the slow figure among them.
    for png in out.glob("*.png"):
        os.utime(png, ns=(0, 0))
    write_report(out, *pickle.loads(study.read_bytes()))  # what the command reported
    redrawn = {p.name for p in out.glob("*.png") if p.stat().st_mtime_ns != 0}
    assert SLOW in redrawn and redrawn == expected - recorded
    assert _figures_left(out) == expected
    assert all(_complete_png(out / name) for name in expected)
    assert set(json.loads((out / DIGESTS).read_text(encoding="utf-8"))) == expected


def test_an_exception_while_figures_draw_stops_the_workers_at_once(tmp_path, monkeypatch):
    """Any exception in the block (here Ctrl-C's KeyboardInterrupt, raised while the page
    is written) kills the figure workers, which the command would otherwise wait for."""
    import ablate.report.figures as figures
    from ablate.report.analysis import analyse
    from ablate.report.figure_files import rendering

    real_save = figures.save_figure

    def save(fig, path):
        if SLOW in Path(path).name:
            time.sleep(60)
        real_save(fig, path)

    monkeypatch.setattr(figures, "save_figure", save)  # forked workers inherit it
    table, histories, record = _study(ARMS, [0, 1, 2])
    out = tmp_path / "r"
    out.mkdir()
    others = _expected() - {SLOW}
    processes = descendants()
    with pytest.raises(KeyboardInterrupt), rendering(out, analyse(table, record), histories, workers=2):
        assert descendants() > processes
        deadline = time.monotonic() + 60
        while not others <= {p.name for p in out.glob("fig_*.png")}:  # one worker left, on the slow figure
            assert time.monotonic() < deadline, "the other figures were never drawn"
            time.sleep(0.02)
        started = time.monotonic()
        raise KeyboardInterrupt  # as Ctrl-C would while the page is written
    assert time.monotonic() - started < 10
    assert descendants() == processes
    recorded = set(json.loads((out / DIGESTS).read_text(encoding="utf-8")))
    assert SLOW not in recorded and recorded <= _figures_left(out) <= _expected()
