"""The learning-curve figure shows each schedule's learning rate where the rate changes."""

from __future__ import annotations

import math

import matplotlib
from synthetic import factorial, histories

from ablate.report.curves import lr_schedules
from ablate.report.figures import learning_curves_figure

matplotlib.use("Agg")


def _cosine(epochs: int, peak: float, warmup: int) -> list[float]:
    return [
        peak * e / warmup if e <= warmup else peak * 0.5 * (1 + math.cos(math.pi * (e - warmup) / (epochs - warmup)))
        for e in range(1, epochs + 1)
    ]


def _with_lr(hist: list[dict], rates_of: dict[str, list[float]]) -> list[dict]:
    for h in hist:
        for entry, lr in zip(h["history"], rates_of[h["arm"]]):
            entry["lr"] = lr
    return hist


def test_a_schedule_gets_its_own_panel_with_one_line_per_distinct_schedule():
    table, _ = factorial({"s": ["constant", "cosine"]}, seeds=2)
    cosine = _cosine(20, 0.1, 2)
    hist = _with_lr(histories(table), {"constant": [0.1] * 20, "cosine": cosine})
    fig = learning_curves_figure(hist, ["constant", "cosine"])
    lr_ax = next(ax for ax in fig.axes if ax.get_title().startswith("learning rate"))
    lines = {ln.get_label(): list(ln.get_ydata()) for ln in lr_ax.get_lines()}
    assert lines == {"constant": [0.1] * 20, "cosine": cosine}
    assert lr_ax.get_ylim()[1] < 1  # its own y axis, not the accuracy panels' percent
    assert max(fig.axes[0].get_ylim()) > 50
    matplotlib.pyplot.close(fig)


def test_one_rate_for_every_run_or_no_rate_recorded_draws_no_panel():
    table, _ = factorial({"d": ["none", "dropout"]}, seeds=2)
    for hist in (histories(table), _with_lr(histories(table), {"baseline": [0.01] * 20, "dropout": [0.01] * 20})):
        fig = learning_curves_figure(hist, ["baseline", "dropout"])
        assert not any(ax.get_title().startswith("learning rate") for ax in fig.axes)
        assert len([ax for ax in fig.axes if ax.get_visible()]) == 2
        matplotlib.pyplot.close(fig)


def test_arms_on_one_schedule_share_a_line_and_constant_rates_that_differ_show():
    runs = {arm: [[{"lr": lr}] * 3] for arm, lr in (("a", 0.1), ("b", 0.1), ("c", 0.01))}
    assert lr_schedules(runs) == {(0.1, 0.1, 0.1): ["a", "b"], (0.01, 0.01, 0.01): ["c"]}
    runs["c"] = [[{"lr": math.nan}] * 3]  # a run without a finite rate is left out, not drawn as zero
    assert lr_schedules(runs) == {}
