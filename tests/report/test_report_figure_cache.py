"""Figures are redrawn only where what they show changed: a report written again
over the same runs draws nothing (and never imports matplotlib)."""

import copy
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

from support import _study

from ablate.report import write_report
from ablate.report.figure_files import DIGESTS

ARMS = ["baseline", "bn", "ln"]


def _age(out: Path) -> None:
    """Mark every figure as old, so a redrawn one shows a new modification time."""
    for png in out.glob("*.png"):
        os.utime(png, ns=(0, 0))


def _redrawn(out: Path) -> set[str]:
    return {p.name for p in out.glob("*.png") if p.stat().st_mtime_ns != 0}


def test_the_same_runs_redraw_nothing_and_a_changed_history_redraws_only_the_curves(tmp_path):
    table, histories, record = _study(ARMS, [0, 1, 2])
    out = tmp_path / "r"
    write_report(out, table, histories, record)
    _age(out)
    write_report(out, table, histories, record)
    assert _redrawn(out) == set()

    changed = copy.deepcopy(histories)
    changed[0]["history"][-1]["val_accuracy"] -= 0.05
    write_report(out, table, changed, record)
    assert _redrawn(out) == {"fig_learning_curves.png", "fig_loss_curves.png"}


def test_a_missing_figure_or_unreadable_digests_redraw(tmp_path):
    table, histories, record = _study(ARMS, [0, 1, 2])
    out = tmp_path / "r"
    write_report(out, table, histories, record)
    _age(out)
    (out / "fig_arms.png").unlink()
    write_report(out, table, histories, record)
    assert _redrawn(out) == {"fig_arms.png"}

    _age(out)
    (out / DIGESTS).write_text("{not json", encoding="utf-8")
    write_report(out, table, histories, record)
    assert _redrawn(out) == {p.name for p in out.glob("*.png")}
    assert set(json.loads((out / DIGESTS).read_text(encoding="utf-8"))) == {p.name for p in out.glob("*.png")}


def test_a_report_with_current_figures_never_imports_matplotlib(tmp_path):
    study = tmp_path / "study.pickle"
    study.write_bytes(pickle.dumps(_study(ARMS, [0, 1, 2])))
    code = (
        "import os, pickle, sys; sys.path.insert(0, 'tests')\n"
        "os.cpu_count = lambda: 1\n"  # drawn in this process, so the first report does import it
        "from ablate.report import write_report\n"
        f"write_report({str(tmp_path / 'r')!r}, *pickle.loads(open({str(study)!r}, 'rb').read()))\n"
        "print('matplotlib' in sys.modules)"
    )
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True) for _ in "12"]
    assert [r.stdout.strip() for r in runs] == ["True", "False"]


def test_figures_draw_with_the_heap_frozen_and_the_collector_is_left_as_it_was(tmp_path, monkeypatch):
    """Drawing freezes what the process holds (no full collection walks it; forked
    workers inherit that) and unfreezes it after, also when a figure fails."""
    import gc

    import pytest

    from ablate.report import figure_files
    from ablate.report.analysis import analyse

    frozen: list[int] = []
    real_render = figure_files.render

    def render(job):
        frozen.append(gc.get_freeze_count())
        real_render(job)

    monkeypatch.setattr(figure_files, "render", render)
    table, histories, record = _study(ARMS, [0, 1, 2])
    before = gc.get_freeze_count()
    (tmp_path / "r").mkdir()
    with figure_files.rendering(tmp_path / "r", analyse(table, record), histories, workers=1):
        pass
    assert frozen and min(frozen) > before and gc.get_freeze_count() == before

    def failing(job):
        raise RuntimeError("a figure that fails")

    monkeypatch.setattr(figure_files, "render", failing)
    with (
        pytest.raises(RuntimeError, match="a figure that fails"),
        figure_files.rendering(tmp_path, analyse(table, record), histories, workers=1),
    ):
        pass
    assert gc.get_freeze_count() == before


def test_a_report_drawn_by_workers_never_imports_matplotlib_in_the_command(tmp_path):
    """The workers' parent loads matplotlib (``ablate run``'s report too): the command, which
    may hold a trained study's memory, never does."""
    study = tmp_path / "study.pickle"
    study.write_bytes(pickle.dumps(_study(ARMS, [0, 1, 2])))
    code = (
        "import os, pickle, sys; sys.path.insert(0, 'tests')\n"
        "os.cpu_count = lambda: 2\n"  # two figure workers on any machine
        "from ablate.report import write_report\n"
        f"write_report({str(tmp_path / 'r')!r}, *pickle.loads(open({str(study)!r}, 'rb').read()))\n"
        "print('matplotlib' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"
    assert len(list((tmp_path / "r").glob("fig_*.png"))) >= 4
