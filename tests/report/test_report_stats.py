"""Numbers in the report: t-intervals and the per-arm leaderboard."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from ablate.report.stats import count_reasons, format_reasons, leaderboard, mean_ci


def test_mean_ci_matches_hand_computed_t_interval():
    values = [0.9, 0.92, 0.95]
    mean, low, high = mean_ci(values)
    arr = np.array(values)
    half = st.t.ppf(0.975, 2) * arr.std(ddof=1) / math.sqrt(3)
    assert mean == pytest.approx(0.9233333333, abs=1e-9)
    assert low == pytest.approx(arr.mean() - half, abs=1e-12)
    assert high == pytest.approx(arr.mean() + half, abs=1e-12)
    # Student-t with 2 df is much wider than a normal interval would be.
    assert half > 1.96 * arr.std(ddof=1) / math.sqrt(3) * 2


def test_mean_ci_other_confidence_level():
    _mean, low, high = mean_ci([1.0, 2.0, 3.0, 4.0], confidence=0.9)
    half = st.t.ppf(0.95, 3) * np.std([1, 2, 3, 4], ddof=1) / 2
    assert (low, high) == pytest.approx((2.5 - half, 2.5 + half))


def test_mean_ci_single_value_has_no_interval():
    mean, low, high = mean_ci([0.8])
    assert mean == pytest.approx(0.8)
    assert math.isnan(low) and math.isnan(high)


def test_mean_ci_ignores_nan_and_handles_empty():
    assert mean_ci([0.9, float("nan"), 0.92, 0.95]) == pytest.approx(mean_ci([0.9, 0.92, 0.95]))
    assert all(math.isnan(x) for x in mean_ci([float("nan")]))
    assert all(math.isnan(x) for x in mean_ci([]))


def test_count_reasons_most_frequent_first():
    counts = count_reasons(["max_epochs", "early_stopping", "early_stopping", None, ""])
    assert counts == [("early_stopping", 2), ("max_epochs", 1)]
    assert format_reasons(counts) == "early_stopping x2, max_epochs x1"


def _run(arm, seed, test=None, status="complete", stop="max_epochs", failure="", **factors):
    nan = float("nan")
    ok = status == "complete"
    return {
        "arm": arm,
        "seed": seed,
        "status": status,
        **factors,
        "train_accuracy": (test + 0.05) if ok else nan,
        "val_accuracy": (test + 0.01) if ok else nan,
        "test_accuracy": test if ok else nan,
        "gap": 0.05 if ok else nan,
        "train_loss": 0.1 if ok else nan,
        "val_loss": 0.2 if ok else nan,
        "test_loss": 0.3 if ok else nan,
        "loss_gap": 0.2 if ok else nan,
        "epochs": 10 if ok else 0,
        "stop_reason": stop if ok else "",
        "seconds": 1.0,
        "failure": failure,
    }


@pytest.fixture
def table():
    rows = [
        _run("base", 0, 0.80, norm="none"),
        _run("base", 1, 0.82, norm="none"),
        _run("bn", 0, 0.90, norm="batchnorm", stop="early_stopping"),
        _run("bn", 1, 0.92, norm="batchnorm", stop="early_stopping"),
        _run("bn", 2, None, status="failed", failure="CUDA out of memory", norm="batchnorm"),
        _run("ln", 0, 0.85, norm="layernorm", stop="early_stopping"),
        _run("ln", 1, 0.87, norm="layernorm"),
        _run("ln", 2, 0.86, norm="layernorm", stop="early_stopping"),
        _run("broken", 0, None, status="failed", failure="nan loss", norm="weird"),
    ]
    return pd.DataFrame(rows)


META = {"arms": ["base", "broken", "bn", "ln"], "factors": ["norm"], "baseline": "base"}


def test_leaderboard_order_counts_and_reasons(table):
    board = leaderboard(table, META["arms"], META["factors"])
    assert list(board["arm"]) == ["bn", "ln", "base", "broken"]
    by = board.set_index("arm")
    assert by.loc["bn", "n_complete"] == 2 and by.loc["bn", "n_failed"] == 1
    assert by.loc["ln", "n_complete"] == 3 and by.loc["ln", "n_failed"] == 0
    assert by.loc["broken", "n_complete"] == 0 and by.loc["broken", "n_failed"] == 1
    assert by.loc["bn", "test_mean"] == pytest.approx(0.91)  # failed seed excluded
    assert math.isnan(by.loc["broken", "test_mean"])
    assert by.loc["ln", "stop_reasons"] == "early_stopping x2, max_epochs x1"
    assert by.loc["bn", "stop_reasons"] == "early_stopping x2"
    assert by.loc["broken", "stop_reasons"] == ""
    assert by.loc["bn", "norm"] == "batchnorm"
    _m, lo, hi = mean_ci([0.85, 0.87, 0.86])
    assert (by.loc["ln", "test_low"], by.loc["ln", "test_high"]) == pytest.approx((lo, hi))


def test_leaderboard_ties_keep_design_order_and_include_subparameters():
    rows = [_run("b", 0, 0.9, reg="dropout", **{"reg.rate": 0.5}), _run("a", 0, 0.9, reg="none", **{"reg.rate": None})]
    board = leaderboard(pd.DataFrame(rows), ["b", "a"], ["reg"])
    assert list(board["arm"]) == ["b", "a"]
    assert board.loc[0, "reg.rate"] == 0.5
    assert pd.isna(board.loc[1, "reg.rate"])  # not applicable to "none"
    assert math.isnan(board.loc[0, "test_low"])  # one seed: no interval


def test_leaderboard_ranks_on_validation_not_test_accuracy():
    """An arm that is best on test but not on validation is not ranked first: choosing on
    test accuracy would report a number that was also used to choose."""
    rows = [_run("val_best", s, 0.80) for s in range(2)] + [_run("test_best", s, 0.85) for s in range(2)]
    table = pd.DataFrame(rows)
    table.loc[table["arm"] == "val_best", "val_accuracy"] = 0.95
    board = leaderboard(table, ["test_best", "val_best"], [])
    assert list(board["arm"]) == ["val_best", "test_best"]


def test_leaderboard_intervals_stop_where_the_metric_does():
    """Two seeds far apart give a t interval (df 1) past 0% and 100%; cut to what an accuracy
    can be it keeps its coverage, and the unbounded loss gap is left as it is."""
    rows = [_run("wide", 0, 0.30), _run("wide", 1, 0.95)]
    board = leaderboard(pd.DataFrame(rows), ["wide"], []).set_index("arm")
    _m, lo, hi = mean_ci([0.30, 0.95])
    assert lo < 0 and hi > 1  # what Student's t gives
    assert (board.loc["wide", "test_low"], board.loc["wide", "test_high"]) == (0.0, 1.0)
    assert board.loc["wide", "test_mean"] == pytest.approx(0.625)
    table = pd.DataFrame(rows).assign(loss_gap=[-5.0, 5.0])
    board = leaderboard(table, ["wide"], []).set_index("arm")
    assert board.loc["wide", "loss_gap_low"] == pytest.approx(mean_ci([-5.0, 5.0])[1])
