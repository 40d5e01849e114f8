"""Reports of studies with hundreds of arms: every figure at most 2,000 px tall, a page
under 300 KB that names the best arms and the baseline and folds the rest, and nothing cut
below MANY_ARMS arms."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pandas as pd
import pytest
from synthetic import factorial, histories

from ablate.engine.store.results import write_tables
from ablate.report import write_report
from ablate.report.analysis import analyse
from ablate.report.figure_limits import DPI, MANY_ARMS, MAX_HEIGHT_PX, TOP_ARMS
from ablate.report.page import build_context

# 5 x 3 x 4 x 3 x 3 = 540 arms, as a five-factor factorial
FACTORS = {
    "a": ["none", "a1", "a2", "a3", "a4"],
    "b": ["none", "b1", "b2"],
    "c": ["none", "c1", "c2", "c3"],
    "d": ["none", "d1", "d2"],
    "e": ["none", "e1", "e2"],
}


def png_size(path: Path) -> tuple[int, int]:
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return int(width), int(height)


@pytest.fixture(scope="module")
def report_540(tmp_path_factory):
    out = tmp_path_factory.mktemp("many")
    table, record = factorial(FACTORS, seeds=2, test_effect=lambda lv: 0.02 * (lv["a"] != "none"))
    runs = histories(table, epochs=5)
    write_tables(out, table, runs, record)
    write_report(out, table, runs, record)
    return out, table, record


def test_every_figure_of_a_540_arm_study_is_at_most_2000px_tall_and_the_page_under_300kb(report_540):
    out, _, _ = report_540
    figures = sorted(out.glob("fig_*.png"))
    assert {p.name for p in figures} >= {"fig_arms.png", "fig_accuracy_vs_gap.png", "fig_interactions.png"}
    heights = {p.name: png_size(p)[1] for p in figures}
    assert max(heights.values()) <= MAX_HEIGHT_PX, heights
    assert (out / "index.html").stat().st_size < 300_000


def test_the_page_names_the_best_arms_and_the_baseline_and_folds_every_arm(report_540):
    out, table, _ = report_540
    page = (out / "index.html").read_text(encoding="utf-8")
    board = page.split('<table id="leaderboard">')[1].split("</table>")[0]
    ranks = [int(r) for r in re.findall(r'<tr class="arm-row"[^>]*>\s*<td class="num">(\d+)</td>', board)]
    assert ranks[:TOP_ARMS] == list(range(1, TOP_ARMS + 1)) and len(ranks) == TOP_ARMS + 1
    assert ranks[-1] > TOP_ARMS and 'data-baseline="true"' in board  # the baseline, at its own rank
    folded = page.split('<details id="all-arms">')[1].split("</details>")[0]
    assert folded.count("<tr") == 1 + 540  # the header and every arm
    assert f"Showing the {TOP_ARMS} best of 540 arms by mean validation accuracy and the baseline" in page
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "519 more arms are in leaderboard.md and results.csv." in summary
    assert len(summary) < 30_000
    assert (out / "leaderboard.md").read_text(encoding="utf-8").count("\n") == 2 + 540
    assert len(pd.read_csv(out / "results.csv")) == len(table)


def test_up_to_many_arms_every_arm_is_listed_and_nothing_is_folded():
    """MANY_ARMS arms: the page is as before; one more, and the leaderboard names the best."""
    for arms, listed in ((MANY_ARMS, MANY_ARMS), (MANY_ARMS + 1, TOP_ARMS + 1)):
        table, record = factorial({"x": ["none", *(f"x{i}" for i in range(1, arms))]}, seeds=2)
        context = build_context(analyse(table, record), {})
        assert len(context["rows"]) == listed
        assert bool(context["all_arms"]) == (arms > MANY_ARMS)
        assert [r["rank"] for r in context["rows"]][:TOP_ARMS] == list(range(1, TOP_ARMS + 1))


def test_thirty_arms_with_long_names_fit_in_2000px():
    """Three-line names for 30 arms would pass the limit: the labels take fewer lines."""
    import ablate.report.figures as figures

    long = [f"level_{i}_" + "with_a_very_long_component_name + and_another_part + and_a_third" for i in range(29)]
    table, record = factorial({"x": ["none", *long]}, seeds=2)
    an = analyse(table, record, descriptive=False)
    fig = figures.arms_figure(an.board, an.table, an.baseline)
    try:
        assert fig.get_size_inches()[1] * DPI <= MAX_HEIGHT_PX
        labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
        assert max(label.count("\n") for label in labels) < 2  # fewer than three lines each
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_the_curves_and_effects_say_what_they_leave_out():
    """20 seeds: the curves draw 10 per arm and say so; 14 levels: the effects figures draw 12 and say so."""
    table, record = factorial({"x": ["none", *(f"x{i}" for i in range(1, 14))], "y": ["none", "y1"]}, seeds=12)
    an = analyse(table, record)
    context = build_context(an, {}, histories(table, epochs=2))
    assert "Each panel draws the first 10 of its arm's seeds (up to 12)." in context["curves_note"]
    assert context["levels_note"].startswith("x has more than 12 levels: the figure draws the first 12")
