"""Static PNG figures for the report.

Agg backend so reports build on headless machines; every figure is closed so a
long study loop does not leak memory. Arms with no completed run are skipped
here (the leaderboard still lists them), and an empty study still yields every
file so the page never links to a missing image.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import LogLocator, MaxNLocator, NullLocator

from ablate.report.curves import draw_panel, has_eval_train, lr_schedules, runs_of, seeds_line
from ablate.report.effects import LevelStat, cell_means
from ablate.report.figure_limits import (
    DPI,
    MANY_ARMS,
    MAX_BARS,
    MAX_HEIGHT_PX,
    MAX_LEVELS,
    MAX_LINES,
    MAX_PANELS,
    TOP_ARMS,
)
from ablate.report.glance import glance_figure  # noqa: F401  (drawn by name, as every figure here)
from ablate.report.labels import place
from ablate.report.layout import grid_inches, text_inches
from ablate.report.shown import top_and_baseline
from ablate.report.stats import per_arm_values

matplotlib.rcParams["figure.dpi"] = DPI  # laid out at the DPI saved: the save reuses the layout's text measures

# Beyond this many arms the scatter shows leaderboard ranks instead of names,
# because a dozen long labels in one plot overlap whatever we do.
MAX_NAMED_POINTS = 10
# (size, weight) of the text the figures write: warm_up looks each font up once
WARM_FONTS = [(7.0, "normal"), (8.0, "normal"), (8.5, "normal"), (9.0, "normal"), (10.0, "normal")]
WARM_FONTS += [(8.0, "bold"), (9.0, "bold")]
TRAIN_COLOR, VAL_COLOR, POINT_COLOR, BASE_COLOR = "#1f77b4", "#d62728", "#333333", "#888888"
FRONT_COLOR = "#2ca02c"


def arms_figure(board: pd.DataFrame, table: pd.DataFrame, baseline: str | None = None) -> plt.Figure:
    """Test accuracy and gap per arm side by side, sharing the arm labels (leaderboard order).

    Horizontal dot-and-whisker charts: long arm names stay readable on the y axis, and
    points with CIs rather than bars from zero show the one-or-two-point differences
    ablations are about. One figure for both halves the cost of 40 arm labels. Past
    MANY_ARMS arms, the best TOP_ARMS (and the baseline) are drawn so, over a rank plot of
    every arm (``many_arms_figure``).
    """
    n = len(board)
    if n > MANY_ARMS:
        return many_arms_figure(board, table, baseline)
    labels = _arm_labels(board["arm"], 1.4) if n else []
    # Each arm gets room for its (wrapped) label so neighbouring names never touch.
    height = _rows_height(labels, 1.4) if n else 2.5
    fig, axes = plt.subplots(1, 2, figsize=(12, max(height, 2.5)), sharey=True)
    if n == 0:
        axes[1].set_axis_off()
        return _empty(fig, axes[0], "No completed runs")
    _arm_panels(fig, axes, board, table, baseline, labels)
    fig.subplots_adjust(**grid_inches(fig, 1, 2, left=_names_inches(fig, labels), wgap=0.25, **ARMS_MARGINS))
    return fig


# Inches around the arms charts: the legend above, tick labels and an axis label below.
ARMS_MARGINS = {"right": 0.2, "top": 0.45, "bottom": 0.55, "hgap": 0.0}


def _names_inches(fig: plt.Figure, labels: Sequence[str]) -> float:
    """Room left of the charts for the arm names (bold: the baseline's may be), ticks and a pad."""
    return max(text_inches(fig, labels, 9, bold=True), 0.4) + 0.25


RANK_HEIGHT = 3.6  # inches of the rank plot under the named arms


def many_arms_figure(board: pd.DataFrame, table: pd.DataFrame, baseline: str | None = None) -> plt.Figure:
    """The TOP_ARMS best arms on validation accuracy (and the baseline) with seeds and 95% CIs,
    over a rank plot of every arm's mean and interval, so no arm is left out and the figure
    stays the same height whatever the number of arms."""
    top = board[board["arm"].astype(str).isin(top_and_baseline([str(a) for a in board["arm"]], baseline))]
    labels = _arm_labels(top["arm"], 1.0 + RANK_HEIGHT + 0.9)
    upper = _rows_height(labels, 1.0)
    fig = plt.figure(figsize=(12, upper + RANK_HEIGHT + 0.9))
    room = {**ARMS_MARGINS, "top": 0.75, "hgap": 0.75}  # the title over the named arms; their axis label
    left = max(_names_inches(fig, labels), 0.85)  # the rank plots' tick and axis labels at the least
    grid = fig.add_gridspec(
        2, 2, height_ratios=[upper, RANK_HEIGHT], **grid_inches(fig, 2, 2, left=left, wgap=0.85, **room)
    )
    first = fig.add_subplot(grid[0, 0])
    axes = np.array([first, fig.add_subplot(grid[0, 1], sharey=first)])
    axes[1].tick_params(labelleft=False)
    _arm_panels(fig, axes, top.reset_index(drop=True), table, baseline, labels)
    named = "" if baseline not in set(top["arm"].iloc[TOP_ARMS:]) else " and the baseline"
    axes[0].set_title(
        f"The {TOP_ARMS} best of {len(board)} arms by mean validation accuracy{named}; below, every arm",
        loc="left",
        fontsize=10,
    )
    for column, (key, ylabel) in enumerate(
        (("test", "Test accuracy (%)"), ("gap", "Generalization gap, train − test (pp)"))
    ):
        _rank_panel(fig.add_subplot(grid[1, column]), board, key, ylabel, baseline)
    return fig


def _arm_labels(arms: Sequence[object], other_inches: float) -> list[str]:
    """Wrapped arm names, on fewer lines where three would make the figure taller than MAX_HEIGHT_PX."""
    for lines in (3, 2, 1):
        labels = [_label(a, 40, lines) for a in arms]
        if _rows_height(labels, other_inches) * DPI <= MAX_HEIGHT_PX:
            break
    return labels


def _rows_height(labels: Sequence[str], other_inches: float) -> float:
    return other_inches + sum(0.38 + 0.16 * lab.count("\n") for lab in labels)


def _arm_panels(
    fig: plt.Figure, axes: np.ndarray, board: pd.DataFrame, table: pd.DataFrame, baseline: str | None, labels: list[str]
) -> None:
    """Test accuracy and gap of the board's arms, one labelled row each, best on top."""
    for ax, key, column, xlabel, zero in (
        (axes[0], "test", "test_accuracy", "Test accuracy (%)", False),
        (axes[1], "gap", "gap", "Generalization gap, train − test (pp)", True),
    ):
        _metric_panel(ax, board, table, key, column, baseline, zero)
        ax.set_xlabel(xlabel)
    axes[0].set_yticks(np.arange(len(board)), labels, fontsize=9)
    _bold_baseline(axes[0], board["arm"], baseline)
    axes[0].invert_yaxis()  # best arm on top, as in the leaderboard
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper center", ncol=3, fontsize=8, frameon=False)


def _rank_panel(ax: plt.Axes, board: pd.DataFrame, key: str, ylabel: str, baseline: str | None) -> None:
    """Every arm's mean and 95% CI against its leaderboard rank; the named arms in colour."""
    rank = np.arange(1, len(board) + 1)
    mean = board[f"{key}_mean"].to_numpy(float) * 100
    low = board[f"{key}_low"].to_numpy(float) * 100
    high = board[f"{key}_high"].to_numpy(float) * 100
    ax.vlines(rank, low, high, color=BASE_COLOR, alpha=0.35, lw=0.8, label="95% CI")
    top = rank <= TOP_ARMS
    ax.scatter(rank[~top], mean[~top], s=6, color=POINT_COLOR, zorder=2, label="arm mean")
    ax.scatter(rank[top], mean[top], s=10, color=TRAIN_COLOR, zorder=3, label=f"the {TOP_ARMS} named above")
    is_base = (board["arm"].astype(str) == str(baseline)).to_numpy()
    if is_base.any():
        ax.scatter(rank[is_base], mean[is_base], s=60, marker="D", color=FRONT_COLOR, zorder=4, label="baseline")
    ax.set_xlabel("leaderboard rank (mean validation accuracy)")
    ax.set_ylabel(ylabel, fontsize=9)
    ax.set_xlim(0, len(board) + 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, frameon=False, loc="best")


def _metric_panel(
    ax: plt.Axes, board: pd.DataFrame, table: pd.DataFrame, key: str, column: str, baseline: str | None, zero_line: bool
) -> None:
    """Seed points (one scatter call for all arms), mean with 95% CI, baseline mean line."""
    n = len(board)
    y = np.arange(n)
    mean = board[f"{key}_mean"].to_numpy(float) * 100
    low = board[f"{key}_low"].to_numpy(float) * 100
    high = board[f"{key}_high"].to_numpy(float) * 100
    err = np.vstack([np.nan_to_num(mean - low), np.nan_to_num(high - mean)])
    seeds = per_arm_values(table, column)
    xs: list[float] = []
    ys: list[float] = []
    for i, arm in enumerate(board["arm"]):
        vals = seeds.get(str(arm), np.array([])) * 100
        xs.extend(vals)
        ys.extend(i + (np.linspace(-0.12, 0.12, len(vals)) if len(vals) > 1 else np.zeros(len(vals))))
    ax.scatter(xs, ys, s=14, color=POINT_COLOR, alpha=0.55, zorder=2, label="seed")
    ax.errorbar(
        mean,
        y,
        xerr=err,
        fmt="o",
        color=TRAIN_COLOR,
        ecolor=TRAIN_COLOR,
        capsize=4,
        markersize=7,
        zorder=3,
        label="mean, 95% CI",
    )
    if baseline is not None and baseline in set(board["arm"]):
        base = float(board.loc[board["arm"] == baseline, f"{key}_mean"].iloc[0]) * 100
        ax.axvline(base, color=BASE_COLOR, ls="--", lw=1, label="baseline mean")
    if zero_line and np.nanmin(np.r_[low, mean, 1.0]) <= 0:  # only when zero is in range:
        ax.axvline(0, color="black", lw=0.8)  # else it squashes the data to one side
    ax.grid(axis="x", alpha=0.3)


def learning_curves_figure(
    histories: Sequence[Mapping],
    arms: Sequence[str],
    ncols: int = 4,
    kind: str = "accuracy",
    max_epochs: int | None = None,
) -> plt.Figure:
    """Small multiples of train/validation accuracy (or loss) per arm, one line per seed
    (curves.py): nothing is averaged, so a seed that stopped early cannot vanish from a mean."""
    runs = {arm: runs_of(histories, arm) for arm in arms}
    runs = {a: r for a, r in runs.items() if r}
    n = len(runs)
    if n == 0:
        fig, ax = plt.subplots(figsize=(8.5, 2.5))
        return _empty(fig, ax, "No learning curves recorded")
    eval_train = has_eval_train(histories)
    schedules = lr_schedules(runs) if kind == "accuracy" else {}
    panels = n + bool(schedules)  # the learning rates get a panel of their own where they change
    fig, axes = _grid(panels, min(ncols, panels), right=0.6 if schedules else 0.15)
    late: list[float] = []
    for ax, (arm, rs) in zip(axes.flat, runs.items()):
        late += draw_panel(ax, rs, kind, eval_train, max_epochs)
        # A fixed y skips matplotlib's costly automatic title placement (a second for 12 panels).
        ax.set_title(_label(arm, 38, 2) + "\n" + seeds_line(rs, max_epochs), fontsize=8, y=1.0, pad=4)
        ax.grid(alpha=0.3)
    axes.flat[0].autoscale_view()  # once for all (shared axes): matplotlib < 3.11 leaves collections out
    _zoom(axes.flat[0], np.asarray(late, dtype=float), kind)
    for ax in list(axes.flat)[panels:]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("epoch", fontsize=9)
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy (%)" if kind == "accuracy" else "loss", fontsize=9)
    for ax in list(axes.flat)[max(panels - axes.shape[1], 0) : panels]:  # hidden panels below: ticks on these
        ax.xaxis.set_tick_params(labelbottom=True)
    if schedules:
        _lr_panel(fig, axes.flat[n], schedules)
    handles, names = axes.flat[0].get_legend_handles_labels()
    handles.append(plt.Line2D([], [], marker="x", color="black", ls="none"))
    names.append("a seed that stopped early")
    fig.legend(handles, names, loc="upper center", ncol=min(4, len(names)), frameon=False, fontsize=8.5)
    return fig


def _lr_panel(fig: plt.Figure, shared: plt.Axes, schedules: Mapping[tuple[float, ...], list[str]]) -> None:
    """The learning rate of each epoch's last step, one line per distinct schedule, in place of
    ``shared`` (a panel of the grid: this one keeps the epochs but has its own y axis)."""
    spec = shared.get_subplotspec()
    if spec is None:  # not a panel of a grid: nothing to put in its place
        return
    ax = fig.add_subplot(spec, sharex=shared)
    shared.remove()
    cmap = plt.get_cmap("tab10")
    for k, (rates, arms) in enumerate(schedules.items()):
        more = f" and {len(arms) - 1} more" if len(arms) > 1 else ""
        label = _label(arms[0], 30, 1) + more
        ax.plot(np.arange(1, len(rates) + 1), rates, color=cmap(k % 10), lw=1.4, label=label)
    ax.set_title("learning rate\n(last step of each epoch)", fontsize=8, y=1.0, pad=4)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("epoch", fontsize=9)
    ax.yaxis.tick_right()  # the panel on its left shares its y axis and has no room for labels
    ax.tick_params(labelbottom=True, labelsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, frameon=False, loc="best")


def _grid(n: int, ncols: int, right: float = 0.15) -> tuple[plt.Figure, np.ndarray]:
    """A fixed layout in inches instead of tight_layout, which costs a second per dozen panels:
    room on top for the legend, above each panel for a three-line title, below for ticks."""
    nrows = math.ceil(n / ncols)
    width, height, top, bottom, left, gap_h = 3.1 * ncols + 0.6, 2.7 * nrows + 0.95, 0.5, 0.45, 0.75, 0.8
    axes_h = (height - top - bottom - gap_h * (nrows - 1)) / nrows
    return plt.subplots(
        nrows,
        ncols,
        figsize=(width, height),
        sharex=True,
        sharey=True,
        squeeze=False,
        gridspec_kw={
            "left": left / width,
            "right": 1 - right / width,
            "top": 1 - (top + 0.5) / height,
            "bottom": bottom / height,
            "hspace": gap_h / axes_h,
            "wspace": 0.08,
        },
    )


def _zoom(ax: plt.Axes, late: np.ndarray, kind: str) -> None:
    """Loss on a log axis (a rising validation loss stays visible); accuracy zoomed past epoch 1."""
    late = late[np.isfinite(late)]
    if kind == "loss":
        if (late > 0).any():
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(numticks=5))
            ax.yaxis.set_minor_locator(NullLocator())  # a dozen panels of minor ticks cost a second
    else:
        ax.yaxis.set_major_locator(MaxNLocator(5))
        if late.size:
            top = ax.get_ylim()[1]
            ax.set_ylim(max(0.0, float(late.min()) - 0.08 * max(top - float(late.min()), 1.0)), top)
    ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))


def accuracy_vs_gap_figure(board: pd.DataFrame, baseline: str | None = None, front: Sequence[str] = ()) -> plt.Figure:
    """Mean test accuracy against mean gap with 95% CIs, one labelled point per arm, Pareto front marked.

    The trade-off plot: up-left is better (accurate and not overfitting); an arm off the
    front is beaten on both counts by some arm on it, on the means. Labels are names up to
    MAX_NAMED_POINTS arms, else leaderboard ranks, and never overlap (labels.py).
    """
    fig, ax = plt.subplots(figsize=(8.5, 5.8))
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.12, top=0.9)
    frame = board[np.isfinite(board["test_mean"]) & np.isfinite(board["gap_mean"])] if len(board) else board
    if len(frame) == 0:
        return _empty(fig, ax, "No completed runs")
    x, y = frame["gap_mean"].to_numpy(float) * 100, frame["test_mean"].to_numpy(float) * 100
    _cross_intervals(ax, frame, x, y)
    _points_and_front(ax, x, y, np.array([str(a) in set(front) for a in frame["arm"]]))
    ax.margins(x=0.2, y=0.15)
    ax.set_xlabel("Generalization gap, train − test (pp)")
    ax.set_ylabel("Test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=8, frameon=False)
    named = len(frame) <= MAX_NAMED_POINTS
    arms = [str(a) for a in frame["arm"]]
    texts = [_label(a, 24, 2) if named else str(i) for i, a in enumerate(arms, start=1)]
    keep = (
        set(top_and_baseline(arms, baseline)) if len(arms) > MANY_ARMS else set(arms)
    )  # hundreds of labels hide the points
    pick = np.array([a in keep for a in arms])
    place(
        ax,
        x[pick],
        y[pick],
        [t for t, k in zip(texts, pick) if k],
        weights=["bold" if a == baseline else "" for a in arms if a in keep],
    )
    if not named:  # below the axes, where no point label can be
        which = f" (the {TOP_ARMS} best and the baseline)" if len(keep) < len(arms) else ""
        fig.text(
            0.98, 0.01, f"numbers = leaderboard rank{which}", ha="right", va="bottom", fontsize=8, color=BASE_COLOR
        )
    return fig


def _cross_intervals(ax: plt.Axes, frame: pd.DataFrame, x: np.ndarray, y: np.ndarray) -> None:
    """Each arm's 95% CIs on both axes, faint, under the points."""

    def col(name: str) -> np.ndarray:
        return frame[name].to_numpy(float) * 100

    xerr, yerr = (
        np.vstack([x - col("gap_low"), col("gap_high") - x]),
        np.vstack([y - col("test_low"), col("test_high") - y]),
    )
    ax.errorbar(
        x,
        y,
        xerr=np.nan_to_num(xerr),
        yerr=np.nan_to_num(yerr),
        fmt="none",
        ecolor=BASE_COLOR,
        alpha=0.45,
        lw=0.8,
        zorder=1,
        label="95% CI",
    )


def _points_and_front(ax: plt.Axes, x: np.ndarray, y: np.ndarray, on_front: np.ndarray) -> None:
    ax.scatter(x[~on_front], y[~on_front], s=36, color=TRAIN_COLOR, zorder=3, label="arm")
    if on_front.any():
        order = np.argsort(x[on_front])
        ax.plot(x[on_front][order], y[on_front][order], color=FRONT_COLOR, lw=1.2, ls="--", zorder=2)
        ax.scatter(
            x[on_front],
            y[on_front],
            s=60,
            color=FRONT_COLOR,
            marker="D",
            zorder=4,
            label="Pareto front of the means (descriptive)",
        )


def compare_figure(board: pd.DataFrame) -> plt.Figure:
    """Accuracy against gap for the arms of several studies, one colour per study."""
    fig, ax = plt.subplots(figsize=(8.5, 5.5))
    frame = (
        board[np.isfinite(board["test_mean"].astype(float)) & np.isfinite(board["gap_mean"].astype(float))]
        if len(board)
        else board
    )
    if len(frame) == 0:
        return _empty(fig, ax, "No completed runs")
    cmap = plt.get_cmap("tab10")
    named = len(frame) <= MAX_NAMED_POINTS
    for k, (study, grp) in enumerate(frame.groupby("study", sort=False)):
        ax.scatter(
            grp["gap_mean"].astype(float) * 100,
            grp["test_mean"].astype(float) * 100,
            s=40,
            color=cmap(k % 10),
            label=_label(study, 40, 1),
            zorder=3,
        )
    for rank, (xi, yi, arm) in enumerate(zip(frame["gap_mean"], frame["test_mean"], frame["arm"]), start=1):
        ax.annotate(
            _label(arm, 24) if named else str(rank),
            (float(xi) * 100, float(yi) * 100),
            xytext=(5, 4),
            textcoords="offset points",
            fontsize=8,
            va="bottom",
        )
    if not named:
        ax.text(
            0.99,
            0.01,
            "numbers = rank in the table",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=8,
            color=BASE_COLOR,
        )
    ax.margins(x=0.25, y=0.15)
    ax.set_xlabel("Generalization gap, train − test (pp)")
    ax.set_ylabel("Test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def main_effects_figure(mains: Mapping[str, Mapping[str, Sequence]], factors: Sequence[str]) -> plt.Figure:
    """One column per factor, rows test accuracy and gap: marginal mean per level with 95% CI."""
    rows = [("test_accuracy", "test accuracy (%)"), ("gap", "gap (pp)")]
    fig, axes = plt.subplots(
        len(rows), len(factors), figsize=(max(3.2 * len(factors), 5.5), 5.6), squeeze=False, sharey="row"
    )
    for r, (metric, ylabel) in enumerate(rows):
        for c, f in enumerate(factors):
            ax, levels = axes[r, c], mains[metric][f][:MAX_LEVELS]
            _level_line(ax, [s.level for s in levels], levels, TRAIN_COLOR if r == 0 else VAL_COLOR)
            if r == 0:
                ax.set_title(_label(f, 30), fontsize=10, y=1.0, pad=6)
            if c == 0:
                ax.set_ylabel(ylabel, fontsize=9)
            ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def interactions_figure(table: pd.DataFrame, levels: pd.DataFrame, factors: Sequence[str]) -> plt.Figure:
    """Interaction plots of test accuracy, one panel per pair of factors: parallel lines add up;
    what non-parallel lines mean depends on the direction of the effects (verdicts.py)."""
    pairs = list(itertools.combinations(factors, 2))[:MAX_PANELS]
    ncols = min(2, len(pairs))  # two wide panels keep their text legible in the page
    nrows = math.ceil(len(pairs) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.6 * ncols, 3.6 * nrows + 0.3), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax, (f, g) in zip(axes.flat, pairs):
        cells = cell_means(table, levels, f, g, "test_accuracy")
        xs = list(dict.fromkeys(a for a, _, _ in cells))[:MAX_LEVELS]
        glevels = list(dict.fromkeys(b for _, b, _ in cells))[:MAX_LINES]
        for k, b in enumerate(glevels):
            stats_b = [s for a, bb, s in cells if bb == b and a in xs]
            shift = (k - (len(glevels) - 1) / 2) * 0.06  # keep error bars of lines apart
            _level_line(ax, xs, stats_b, cmap(k % 10), shift=shift, label=_label(b, 22, 1))
        ax.set_xlabel(_label(f, 30, 1), fontsize=9)
        ax.set_ylabel("test accuracy (%)", fontsize=9)
        ax.set_title(_label(f"{f} × {g}", 40, 1), fontsize=10, y=1.0, pad=6)
        ax.legend(
            title=_label(g, 22, 1),
            fontsize=7,
            title_fontsize=8,
            frameon=False,
            loc="center left",
            bbox_to_anchor=(1.01, 0.5),
        )  # beside the panel: never over the data
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(pairs) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def fanova_figure(
    importances: Mapping[str, float], shares: Mapping[str, tuple[float, float, float]] | None = None
) -> plt.Figure:
    """Horizontal bars of each factor's share, most important on top: the exact variance share of
    the arm means with its bootstrap interval where the design is crossed, else Optuna's fANOVA."""
    shares = shares or {}
    keys = list(dict.fromkeys([*shares, *importances]))
    keys.sort(key=lambda k: -(shares[k][0] if k in shares else importances.get(k, 0.0)))
    keys = keys[:MAX_BARS]  # the largest shares; the table lists every factor
    fig, ax = plt.subplots(figsize=(6.5, 1.4 + 0.45 * len(keys)))
    y = np.arange(len(keys))
    if shares:
        mid = np.array([shares[k][0] for k in keys])
        err = np.vstack([mid - [shares[k][1] for k in keys], np.array([shares[k][2] for k in keys]) - mid])
        ax.barh(
            y,
            mid,
            xerr=np.nan_to_num(np.clip(err, 0, None)),
            color=TRAIN_COLOR,
            alpha=0.8,
            capsize=3,
            label="variance share of arm means, bootstrap 95% interval",
        )
    if importances:
        ax.barh(
            y, [importances.get(k, np.nan) for k in keys], color=TRAIN_COLOR, alpha=0.8, label="Optuna fANOVA (seed 0)"
        )
    ax.set_yticks(y, [_label(k, 30, 1) for k in keys], fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the variance of test accuracy (descriptive; shares sum to 1)")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=1, fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def _level_line(
    ax: plt.Axes,
    xs: Sequence[str],
    levels: Sequence[LevelStat],
    color: Any,
    shift: float = 0.0,
    label: str | None = None,
) -> None:
    """Means with 95% CI error bars at categorical positions, joined by a line."""
    pos = np.arange(len(xs)) + shift
    mean = np.array([s.mean for s in levels], dtype=float) * 100
    low = np.array([s.low for s in levels], dtype=float) * 100
    high = np.array([s.high for s in levels], dtype=float) * 100
    err = np.vstack([np.nan_to_num(mean - low), np.nan_to_num(high - mean)])
    ax.errorbar(pos, mean, yerr=err, fmt="o-", color=color, capsize=3, markersize=5, lw=1.3, label=label)
    ticks = [_label(x, 24, 1) for x in xs]
    crowded = sum(len(t) for t in ticks) > 36
    ax.set_xticks(
        np.arange(len(xs)),
        ticks,
        fontsize=8,
        rotation=30 if crowded else 0,
        ha="right" if crowded else "center",
        rotation_mode="anchor",
    )
    ax.set_xlim(-0.5, len(xs) - 0.5)


def _label(text: object, width: int, max_lines: int = 3) -> str:
    """Wrap long arm names for axis labels, at most ``max_lines`` (the table has the
    full name), and neutralise "$" so matplotlib does not parse mathtext."""
    lines = wrap_name(str(text), width).split("\n")
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: width - 1] + "…"
    return "\n".join(lines).replace("$", r"\$")


def wrap_name(text: str, width: int) -> str:
    """Wrap at the separators arm names are built from ("+", ",", " ", "/"),
    breaking a token mid-word only when it alone is longer than ``width``."""
    tokens = re.findall(r"[^+, /]*[+, /]?", text)  # not "_": "early_stopping" stays whole
    lines, line = [], ""
    for tok in filter(None, tokens):
        while len(tok) > width:  # a single overlong token: hard break
            if line:
                lines.append(line)
                line = ""
            lines.append(tok[:width])
            tok = tok[width:]
        if len(line) + len(tok.rstrip()) > width and line:
            lines.append(line)
            line = ""
        line += tok
    if line:
        lines.append(line)
    return "\n".join(part.rstrip() for part in lines)


def _bold_baseline(ax: plt.Axes, arms: Sequence[str], baseline: str | None) -> None:
    for tick, arm in zip(ax.get_yticklabels(), arms):
        if arm == baseline:
            tick.set_fontweight("bold")


def _empty(fig: plt.Figure, ax: plt.Axes, message: str) -> plt.Figure:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color=BASE_COLOR)
    ax.set_axis_off()
    return fig


def save_figure(fig: plt.Figure, path: Path) -> None:
    _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> None:
    width, height = fig.get_size_inches()
    if height * DPI > MAX_HEIGHT_PX:  # each figure is laid out below it; this only keeps the promise
        fig.set_size_inches(width, MAX_HEIGHT_PX / DPI)
    try:
        # Fast zlib level: a third of the encoding time for files a little larger.
        fig.savefig(path, dpi=DPI, pil_kwargs={"compress_level": 1})
    finally:
        plt.close(fig)


def warm_up() -> None:
    """One small figure drawn to nothing, with what the report's figures use on first
    sight (a log axis's mathtext labels, whose parser takes a tenth of a second to build,
    and text of each size and weight, each a font lookup of a few milliseconds), so those
    costs are paid once, in the workers' parent, not in every worker's first figures."""
    import io

    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [0.1, 10], marker="o", label="a")
    ax.set_yscale("log")  # tick labels in mathtext
    ax.legend(fontsize=7, frameon=False)
    for size, weight in WARM_FONTS:
        fig.text(0.5, 0.5, "warm", fontsize=size, fontweight=weight)
    _save(fig, io.BytesIO())  # type: ignore[arg-type]
