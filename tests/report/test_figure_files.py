"""A figure's temporary file left by a killed process is removed by the next report
(one of a live process is not), and an emptied figure file is drawn again."""

from __future__ import annotations

import os

from ablate.report.figure_workers import remove_orphans


def test_temporary_figure_files_of_dead_processes_are_removed(tmp_path):
    dead = 4_194_305  # above Linux's largest pid: no such process
    orphans = [tmp_path / f".fig_arms.png.{dead}.partial.png", tmp_path / f".figures.json.{dead}.partial"]
    mine = tmp_path / f".fig_arms.png.{os.getpid()}.partial.png"
    for path in [*orphans, mine]:
        path.write_bytes(b"half a figure")
    (tmp_path / "fig_arms.png").write_bytes(b"a whole figure")
    remove_orphans(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["fig_arms.png", mine.name])


def test_an_emptied_figure_file_is_drawn_again(tmp_path):
    from ablate.report.figure_files import _whole

    (tmp_path / "fig_arms.png").write_bytes(b"")
    (tmp_path / "fig_loss_curves.png").write_bytes(b"\x89PNG")
    assert not _whole(tmp_path / "fig_arms.png") and not _whole(tmp_path / "missing.png")
    assert _whole(tmp_path / "fig_loss_curves.png")


def test_every_figure_has_its_place_in_the_drawing_order():
    from ablate.report.figure_files import DRAWING_ORDER, FIGURES

    assert sorted(DRAWING_ORDER) == sorted(FIGURES)
