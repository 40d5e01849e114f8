"""Learning curves: the leaderboard's quantities, epoch by epoch, one line per seed.

Each history entry holds eval-mode accuracy and loss on the full training and
validation splits (``train_accuracy``, ``val_accuracy``: the same quantities as
the leaderboard, measured the same way) and the running train-mode values
averaged over the epoch's batches (``running_loss``, ``running_accuracy``:
dropout on, augmented). The running loss is drawn as its own dashed curve.
Older histories have no ``running_*`` keys: their ``train_*`` values ARE the
running ones, and the curves are labelled so.

Every seed is its own line and a seed that stopped early ends with a cross, so
no average silently loses seeds after an early stop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the page reads has_eval_train without matplotlib
    import matplotlib.pyplot as plt

TRAIN_COLOR, VAL_COLOR, RUN_COLOR = "#1f77b4", "#d62728", "#7f7f7f"


def has_eval_train(histories: Sequence[Mapping[str, Any]]) -> bool:
    """True when histories carry eval-mode train metrics (the running ones under running_*)."""
    return any("running_loss" in e for h in histories for e in (h.get("history") or [])[:1])


def runs_of(histories: Sequence[Mapping[str, Any]], arm: str) -> list[list[Mapping[str, Any]]]:
    return [list(h["history"]) for h in histories if str(h.get("arm")) == arm and h.get("history")]


def series(run: Sequence[Mapping[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, values) of one key, skipping epochs without it."""
    pts = [(float(e.get("epoch", i + 1)), _num(e.get(key))) for i, e in enumerate(run)]
    pts = [(x, y) for x, y in pts if math.isfinite(y)]
    return np.array([x for x, _ in pts]), np.array([y for _, y in pts])


def lines_for(kind: str, eval_train: bool) -> list[tuple[str, str, str, str]]:
    """(history key, colour, line style, legend label) drawn in each panel."""
    if kind == "accuracy":
        train = (
            ("train_accuracy", TRAIN_COLOR, "-", "train (eval mode, full split)")
            if eval_train
            else ("train_accuracy", TRAIN_COLOR, "--", "train (running, train mode)")
        )
        return [train, ("val_accuracy", VAL_COLOR, "-", "validation (eval mode)")]
    if not eval_train:
        return [
            ("train_loss", TRAIN_COLOR, "--", "train (running, train mode)"),
            ("val_loss", VAL_COLOR, "-", "validation (eval mode)"),
        ]
    return [
        ("train_loss", TRAIN_COLOR, "-", "train (eval mode, full split)"),
        ("val_loss", VAL_COLOR, "-", "validation (eval mode)"),
        ("running_loss", RUN_COLOR, "--", "running train-mode loss (dropout on, augmented)"),
    ]


def seeds_line(runs: Sequence[Sequence[Mapping[str, Any]]], max_epochs: int | None) -> str:
    """How many seeds a panel draws, and which stopped early (at which epoch)."""
    longest = max_epochs or max(len(r) for r in runs)
    stopped = sorted(len(r) for r in runs if len(r) < longest)
    seeds = f"{len(runs)} seed{'s' if len(runs) != 1 else ''}"
    if not stopped:
        return f"{seeds}, all {longest} epochs"
    return f"{seeds}; {len(stopped)} stopped early (epoch {', '.join(map(str, stopped))})"


def draw_panel(
    ax: plt.Axes, runs: Sequence[Sequence[Mapping[str, Any]]], kind: str, eval_train: bool, max_epochs: int | None
) -> list[float]:
    """One line per seed and key; a cross where a seed stopped early. Returns late values (for zoom).

    A key's lines are one collection and its crosses one marker line: a panel costs a few
    artists, not one per seed, which is most of what drawing a dozen panels costs."""
    from matplotlib.collections import LineCollection  # matplotlib: only where curves are drawn

    late: list[float] = []
    longest = max_epochs or max(len(r) for r in runs)
    scale = 100.0 if kind == "accuracy" else 1.0
    for key, color, style, label in lines_for(kind, eval_train):
        lines, ends = [], []
        for run in runs:
            x, y = series(run, key)
            if not x.size:
                continue
            lines.append(np.column_stack([x, y * scale]))
            if len(run) < longest:
                ends.append(lines[-1][-1])
            late.extend((y * scale)[max(2, len(y) // 10) :])
        if lines:
            ax.add_collection(LineCollection(lines, colors=color, linestyles=style, lw=1.0, alpha=0.75, label=label))
        if ends:
            ax.plot(*np.array(ends).T, marker="x", color=color, ms=6, ls="none")
    return late


def lr_schedules(runs: Mapping[str, Sequence[Sequence[Mapping[str, Any]]]]) -> dict[tuple[float, ...], list[str]]:
    """{each epoch's learning rate: the arms that trained with it}, from each arm's longest
    run (its seeds share the schedule); empty where no history records a rate, or every run
    trained at one and the same rate (then there is nothing for a figure to show)."""
    out: dict[tuple[float, ...], list[str]] = {}
    for arm, arm_runs in runs.items():
        longest = max(arm_runs, key=len, default=[])
        rates = tuple(_num(e.get("lr")) for e in longest)
        if rates and all(math.isfinite(r) for r in rates):
            out.setdefault(rates, []).append(arm)
    if len({r for rates in out for r in rates}) <= 1:
        return {}
    return out


def _num(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
