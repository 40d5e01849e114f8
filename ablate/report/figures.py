"""Static PNG figures for the report.

Agg backend so reports build on headless machines; every figure is closed so a
long study loop does not leak memory. Arms with no completed run are skipped
here (the leaderboard still lists them), and an empty study still yields every
file so the page never links to a missing image.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ablate.report import stats  # noqa: E402

DPI = 110
FIGURES = {
    "test_accuracy": "fig_test_accuracy.png",
    "gap": "fig_gap.png",
    "learning_curves": "fig_learning_curves.png",
    "accuracy_vs_gap": "fig_accuracy_vs_gap.png",
}
# Beyond this many arms the scatter shows leaderboard ranks instead of names,
# because a dozen long labels in one plot overlap whatever we do.
MAX_NAMED_POINTS = 10
TRAIN_COLOR, VAL_COLOR, POINT_COLOR, BASE_COLOR = "#1f77b4", "#d62728", "#333333", "#888888"


def write_figures(out_dir: Path, table: pd.DataFrame, histories: Sequence[Mapping],
                  board: pd.DataFrame, baseline: str | None = None) -> dict[str, str]:
    """Write all four figures into ``out_dir``; return {key: file name} for the page."""
    out_dir = Path(out_dir)
    done = board[board["n_complete"] > 0] if not board.empty else board
    _save(metric_figure(done, table, "test", "test_accuracy", "Test accuracy (%)", baseline),
          out_dir / FIGURES["test_accuracy"])
    _save(metric_figure(done, table, "gap", "gap", "Generalization gap, train − test (pp)", baseline,
                        zero_line=True), out_dir / FIGURES["gap"])
    _save(learning_curves_figure(histories, [str(a) for a in done.get("arm", [])]),
          out_dir / FIGURES["learning_curves"])
    _save(accuracy_vs_gap_figure(done, baseline), out_dir / FIGURES["accuracy_vs_gap"])
    return dict(FIGURES)


def metric_figure(board: pd.DataFrame, table: pd.DataFrame, key: str, column: str, xlabel: str,
                  baseline: str | None = None, zero_line: bool = False) -> plt.Figure:
    """Horizontal dot-and-whisker chart: arm names on the y axis stay readable when long.

    Points and CIs rather than bars, because bars from zero would hide the
    one-or-two-point differences that ablations are about.
    """
    n = len(board)
    labels = [_label(a, 40) for a in board["arm"]] if n else []
    # Each arm gets room for its (wrapped) label so neighbouring names never touch.
    height = 1.4 + sum(0.22 + 0.16 * lab.count("\n") + 0.16 for lab in labels) if n else 2.5
    fig, ax = plt.subplots(figsize=(8.5, max(height, 2.5)))
    if n == 0:
        return _empty(fig, ax, "No completed runs")
    y = np.arange(n)
    mean = board[f"{key}_mean"].to_numpy(float) * 100
    low = board[f"{key}_low"].to_numpy(float) * 100
    high = board[f"{key}_high"].to_numpy(float) * 100
    err = np.vstack([np.nan_to_num(mean - low), np.nan_to_num(high - mean)])
    seeds = stats.per_arm_values(table, column)
    for i, arm in enumerate(board["arm"]):
        vals = seeds.get(str(arm), np.array([])) * 100
        jitter = np.linspace(-0.12, 0.12, len(vals)) if len(vals) > 1 else np.zeros(len(vals))
        ax.scatter(vals, i + jitter, s=14, color=POINT_COLOR, alpha=0.55, zorder=2,
                   label="seed" if i == 0 else None)
    ax.errorbar(mean, y, xerr=err, fmt="o", color=TRAIN_COLOR, ecolor=TRAIN_COLOR,
                capsize=4, markersize=7, zorder=3, label="mean, 95% CI")
    if baseline is not None and baseline in set(board["arm"]):
        base = float(board.loc[board["arm"] == baseline, f"{key}_mean"].iloc[0]) * 100
        ax.axvline(base, color=BASE_COLOR, ls="--", lw=1, label="baseline mean")
    if zero_line:
        ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, labels, fontsize=9)
    _bold_baseline(ax, board["arm"], baseline)
    ax.invert_yaxis()  # best arm on top, as in the leaderboard
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def learning_curves_figure(histories: Sequence[Mapping], arms: Sequence[str],
                           ncols: int = 3) -> plt.Figure:
    """Small multiples of train/validation accuracy per arm, mean over seeds with a min-max band."""
    curves = {arm: _stack(histories, arm) for arm in arms}
    curves = {a: c for a, c in curves.items() if c["epochs"].size}
    n = len(curves)
    if n == 0:
        fig, ax = plt.subplots(figsize=(8.5, 2.5))
        return _empty(fig, ax, "No learning curves recorded")
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.6 * nrows + 0.6),
                             sharex=True, sharey=True, squeeze=False)
    for ax, (arm, c) in zip(axes.flat, curves.items()):
        for name, color, label in (("train_accuracy", TRAIN_COLOR, "train"),
                                   ("val_accuracy", VAL_COLOR, "validation")):
            m = c[name]
            if not np.isfinite(m).any():
                continue
            with warnings.catch_warnings():  # all-NaN epochs warn
                warnings.simplefilter("ignore", RuntimeWarning)
                mean, lo, hi = np.nanmean(m, 0) * 100, np.nanmin(m, 0) * 100, np.nanmax(m, 0) * 100
            ax.plot(c["epochs"], mean, color=color, lw=1.5, label=label)
            ax.fill_between(c["epochs"], lo, hi, color=color, alpha=0.18, lw=0)
        ax.set_title(_label(f"{arm} (n={c['n']})", 34), fontsize=9)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("epoch", fontsize=9)
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy (%)", fontsize=9)
    # Hidden panels in the last row drop their tick labels; show them on the panel above.
    for ax in list(axes.flat)[max(n - ncols, 0):n]:
        ax.xaxis.set_tick_params(labelbottom=True)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=2, frameon=False, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / fig.get_figheight()))
    return fig


def accuracy_vs_gap_figure(board: pd.DataFrame, baseline: str | None = None) -> plt.Figure:
    """Mean test accuracy against mean gap, one labelled point per arm.

    The trade-off plot: up-left is better (accurate and not overfitting).
    """
    fig, ax = plt.subplots(figsize=(8.5, 5.5))
    frame = board[np.isfinite(board["test_mean"]) & np.isfinite(board["gap_mean"])] if len(board) else board
    if len(frame) == 0:
        return _empty(fig, ax, "No completed runs")
    x = frame["gap_mean"].to_numpy(float) * 100
    y = frame["test_mean"].to_numpy(float) * 100
    ax.scatter(x, y, s=40, color=TRAIN_COLOR, zorder=3)
    named = len(frame) <= MAX_NAMED_POINTS
    for rank, (xi, yi, arm) in enumerate(zip(x, y, frame["arm"]), start=1):
        text = _label(arm, 24) if named else str(rank)
        weight = "bold" if arm == baseline else "normal"
        ax.annotate(text, (xi, yi), xytext=(5, 4), textcoords="offset points",
                    fontsize=8, weight=weight, va="bottom")
    if not named:
        ax.text(0.99, 0.01, "numbers = leaderboard rank", transform=ax.transAxes,
                ha="right", va="bottom", fontsize=8, color=BASE_COLOR)
    ax.margins(x=0.25, y=0.15)  # room for labels right of the outermost points
    ax.set_xlabel("Generalization gap, train − test (pp)")
    ax.set_ylabel("Test accuracy (%)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _stack(histories: Sequence[Mapping], arm: str) -> dict:
    """Per-arm epoch x run matrices padded with NaN, so shorter (early-stopped) runs
    simply drop out of the mean after their last epoch."""
    runs = [h.get("history") or [] for h in histories if str(h.get("arm")) == arm]
    runs = [r for r in runs if r]
    length = max((len(r) for r in runs), default=0)
    out: dict = {"n": len(runs), "epochs": np.arange(1, length + 1)}
    for key in ("train_accuracy", "val_accuracy", "train_loss", "val_loss"):
        m = np.full((len(runs), length), np.nan)
        for i, r in enumerate(runs):
            m[i, : len(r)] = [_num(e.get(key)) for e in r]
        out[key] = m
    return out


def _num(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _label(text: object, width: int, max_lines: int = 3) -> str:
    """Wrap long arm names for axis labels, at most ``max_lines`` (the table has the
    full name), and neutralise "$" so matplotlib does not parse mathtext."""
    lines = wrap_name(str(text), width).split("\n")
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: width - 1] + "…"
    return "\n".join(lines).replace("$", r"\$")


def wrap_name(text: str, width: int) -> str:
    """Wrap at the separators arm names are built from ("+", ",", "_", " ", "/"),
    breaking a token mid-word only when it alone is longer than ``width``."""
    tokens = re.findall(r"[^+,_ /]*[+,_ /]?", text)
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


def _bold_baseline(ax, arms, baseline: str | None) -> None:
    for tick, arm in zip(ax.get_yticklabels(), arms):
        if arm == baseline:
            tick.set_fontweight("bold")


def _empty(fig, ax, message: str):
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color=BASE_COLOR)
    ax.set_axis_off()
    return fig


def _save(fig, path: Path) -> None:
    try:
        fig.savefig(path, dpi=DPI)
    finally:
        plt.close(fig)
