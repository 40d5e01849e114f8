"""Figure workers forked before the report reads its runs: they draw the figures, and
none is left running whether they drew, had nothing to draw, or the command failed."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest
from support import _study, descendants

from ablate.report.analysis import analyse
from ablate.report.figure_files import FIGURES, rendering
from ablate.report.figure_workers import early_workers

ARMS = ["baseline", "bn", "ln"]


def test_early_workers_draw_every_figure_and_end_with_the_report(tmp_path):
    table, histories, record = _study(ARMS, [0, 1, 2])
    an = analyse(table, record)
    before = descendants()
    with early_workers(2) as pool:  # two, whatever this machine's cores
        assert pool is not None and pool.parent_pid in descendants()  # their parent, started at once
        with rendering(tmp_path, an, histories, pool=pool) as written:
            pass
    assert {p.name for p in tmp_path.glob("fig_*.png")} == set(written.values())
    assert {FIGURES[k] for k in ("arms", "learning_curves", "loss_curves", "accuracy_vs_gap")} <= set(written.values())
    assert len(set(pool.pids.values())) == 2  # both started and took figures
    assert descendants() == before


def test_workers_with_nothing_to_draw_are_stopped_and_never_touch_the_folder(tmp_path):
    table, histories, record = _study(ARMS, [0, 1, 2])
    an = analyse(table, record)
    with rendering(tmp_path, an, histories, workers=1):
        pass
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("fig_*.png")}
    processes = descendants()
    with early_workers(2) as pool, rendering(tmp_path, an, histories, pool=pool):
        pass  # every figure is current: the workers draw nothing
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("fig_*.png")} == before
    assert descendants() == processes


def test_a_failure_before_the_figures_stops_the_early_workers():
    before = descendants()
    with pytest.raises(RuntimeError, match="no runs"), early_workers(2):
        assert descendants() > before
        raise RuntimeError("no runs")  # as reading the study might
    assert descendants() == before


def test_the_command_draws_through_early_workers_without_importing_matplotlib(tmp_path):
    study = tmp_path / "study.pickle"
    study.write_bytes(pickle.dumps(_study(ARMS, [0, 1, 2])))
    code = (
        "import pickle, sys; sys.path.insert(0, 'tests')\n"
        "from ablate.report import write_report\n"
        "from ablate.report.figure_workers import early_workers\n"
        "with early_workers(2) as pool:\n"
        f"    write_report({str(tmp_path / 'r')!r}, *pickle.loads(open({str(study)!r}, 'rb').read()), pool=pool)\n"
        "print('matplotlib' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"  # the workers imported it, in their own processes
    assert len(list((tmp_path / "r").glob("fig_*.png"))) >= 4
