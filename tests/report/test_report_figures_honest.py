"""Figures that show the leaderboard's quantities: per-seed eval-mode curves, the running loss
labelled apart, stopped seeds marked, and accuracy-vs-gap labels that never overlap."""

from __future__ import annotations

import itertools
import re

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.colors import to_hex
from matplotlib.text import Text
from synthetic import factorial, histories

from ablate.report.analysis import analyse
from ablate.report.figures import accuracy_vs_gap_figure, learning_curves_figure

matplotlib.use("Agg")


def test_train_curve_ends_at_the_leaderboard_train_accuracy_for_every_seed():
    table, _ = factorial({"d": ["none", "dropout"]}, seeds=3, sd=0.01)
    hist = histories(table)
    for h, r in zip(hist, table.to_dict("records")):  # eval-mode train accuracy at the last epoch
        h["history"][-1]["train_accuracy"] = r["train_accuracy"]
    fig = learning_curves_figure(hist, ["dropout"], max_epochs=20)
    ax = fig.axes[0]
    (train,) = [c for c in ax.collections if c.get_label() == "train (eval mode, full split)"]
    assert to_hex(train.get_colors()[0]) == "#1f77b4" and train.get_linestyle()[0][1] is None  # solid
    assert len(train.get_segments()) == 3  # one line per seed, no average
    ends = sorted(float(seg[-1, 1]) for seg in train.get_segments())
    want = sorted(100 * table.loc[table["arm"] == "dropout", "train_accuracy"])
    assert ends == pytest.approx(want)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "train (eval mode, full split)" in labels
    matplotlib.pyplot.close(fig)


def test_running_loss_is_its_own_labelled_curve_and_old_histories_say_running():
    table, _ = factorial({"d": ["none", "dropout"]}, seeds=2)
    fig = learning_curves_figure(histories(table), ["baseline"], kind="loss")
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "running train-mode loss (dropout on, augmented)" in labels
    old = learning_curves_figure(histories(table, eval_train=False), ["baseline"])
    labels = [t.get_text() for t in old.legends[0].get_texts()]
    assert "train (running, train mode)" in labels and "train (eval mode, full split)" not in labels
    matplotlib.pyplot.close("all")


def test_seeds_that_stopped_early_are_marked_not_averaged_away():
    table, _ = factorial({"d": ["none", "dropout"]}, seeds=3)
    hist = histories(table, stop={("dropout", 0): 7, ("dropout", 2): 12})
    fig = learning_curves_figure(hist, ["dropout"], max_epochs=20)
    ax = fig.axes[0]
    assert "3 seeds; 2 stopped early (epoch 7, 12)" in ax.get_title()
    crosses = [ln for ln in ax.get_lines() if ln.get_marker() == "x"]
    assert len(crosses) == 2  # one per curve drawn (train, validation), each at both stopped seeds
    assert all(sorted(map(float, ln.get_xdata())) == [7.0, 12.0] for ln in crosses)
    seeds = next(c for c in ax.collections if c.get_label() == "validation (eval mode)").get_segments()
    assert sorted(len(seg) for seg in seeds) == [7, 12, 20]  # every seed drawn to its own last epoch
    matplotlib.pyplot.close(fig)


def _label_boxes(fig):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    texts = [t for t in ax.texts if t.get_text() and t.get_text() != "numbers = leaderboard rank"]
    # The text's own box: an Annotation's box would include its leader line.
    return [Text.get_window_extent(t, renderer) for t in texts], ax.get_window_extent(renderer), texts


@pytest.mark.parametrize("arms, spread", [(6, 0.0), (18, 0.002), (9, 0.02), (30, 0.001)])
def test_accuracy_vs_gap_labels_never_overlap(arms, spread):
    rng = np.random.default_rng(arms)
    names = [f"norm=batchnorm + dropout(rate={r}) + arm{i}" for i, r in zip(range(arms), itertools.cycle([0.1, 0.5]))]
    test = 0.95 + rng.normal(0, spread, arms)
    gap = 0.03 + rng.normal(0, spread, arms)
    board = pd.DataFrame(
        {
            "arm": names,
            "test_mean": test,
            "test_low": test - 0.01,
            "test_high": test + 0.01,
            "gap_mean": gap,
            "gap_low": gap - 0.01,
            "gap_high": gap + 0.01,
        }
    )
    fig = accuracy_vs_gap_figure(board, names[0], [names[0]])
    boxes, frame, texts = _label_boxes(fig)
    assert texts, "no labels placed"
    if arms > 10:  # ranks: every arm is labelled (coincident points share one label, "3, 7")
        ranks = re.findall(r"\d+", " ".join(t.get_text() for t in texts))
        assert sorted(map(int, ranks)) == list(range(1, arms + 1))
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b)
    for box in boxes:
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
    matplotlib.pyplot.close(fig)


def test_the_figures_data_is_the_analysis():
    table, record = factorial({"a": ["none", "a1"], "b": ["none", "b1"]}, seeds=3)
    an = analyse(table, record, descriptive=False)
    fig = accuracy_vs_gap_figure(an.board, an.baseline)
    offsets = np.vstack(
        [c.get_offsets() for c in fig.axes[0].collections if isinstance(c, PathCollection) and len(c.get_offsets())]
    )
    assert sorted(offsets[:, 1]) == pytest.approx(sorted(100 * an.board["test_mean"]))
    matplotlib.pyplot.close(fig)
