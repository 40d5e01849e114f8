"""Descriptive summaries with their uncertainty: exact variance shares (what fANOVA estimates)
and the Pareto front, each with a bootstrap over seeds."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import factorial

from ablate.report.bootstrap import pareto_frequency, share_intervals, variance_shares
from ablate.report.claims import arm_levels
from ablate.report.effects import factor_levels, fanova

GRID = {"big": ["none", "b1", "b2"], "small": ["none", "s1"]}


def _effect(lv):
    return 0.05 * GRID["big"].index(lv["big"]) + 0.004 * (lv["small"] == "s1")


def _shares(table, record):
    levels = factor_levels(table, list(record.factors))
    lv = arm_levels(table, levels, list(record.factors))
    return share_intervals(table, list(record.arms), [lv[a] for a in record.arms], list(record.factors))


def test_exact_shares_are_the_main_effect_variances_and_agree_with_optuna_fanova():
    table, record = factorial(GRID, seeds=4, sd=0.001, test_effect=_effect)
    shares = _shares(table, record)
    big = np.var([0.0, 0.05, 0.10])
    small = np.var([0.0, 0.004])
    assert shares["big"][0] == pytest.approx(big / (big + small), abs=0.01)
    imp, _ = fanova(table, factor_levels(table, ["big", "small"]), ["big", "small"])
    assert imp["big"] == pytest.approx(shares["big"][0], abs=0.05)  # the forest estimates the same
    lo, hi = shares["big"][1:]
    assert lo <= shares["big"][0] <= hi and hi - lo < 0.02


def test_null_shares_have_wide_intervals():
    table, record = factorial(GRID, seeds=5, sd=0.01, rng=np.random.default_rng(1))
    shares = _shares(table, record)
    assert sum(s for s, _, _ in shares.values()) == pytest.approx(1.0)  # some factor always "wins"
    assert max(hi - lo for _, lo, hi in shares.values()) > 0.5


def test_variance_shares_of_many_draws_at_once():
    lv = [{"f": "a"}, {"f": "b"}]
    out = variance_shares(np.array([[0.0, 1.0], [0.0, 0.0]]), lv, ["f"])
    assert out["f"][0] == 1.0 and np.isnan(out["f"][1])  # no variance at all: no share


def test_pareto_frequency_counts_resamples_on_the_front():
    table, record = factorial(
        {"f": ["none", "good", "bad"]},
        seeds=5,
        sd=0.001,
        test_effect=lambda lv: {"none": 0.0, "good": 0.05, "bad": -0.05}[lv["f"]],
        train_effect=lambda lv: {"none": 0.0, "good": 0.05, "bad": -0.05}[lv["f"]],
    )
    freq = pareto_frequency(table, list(record.arms))
    assert freq["good"] == 1.0 and freq["bad"] == 0.0  # better on accuracy, same gap: always dominates


def test_the_sorted_front_is_the_front_of_every_pair():
    """Ties in accuracy or gap, NaN arms, duplicates: the same arms as comparing every pair."""
    from ablate.report.bootstrap import front_mask

    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 30))
        acc, gap = rng.integers(0, 6, n).astype(float), rng.integers(0, 6, n).astype(float)
        acc[rng.random(n) < 0.1] = np.nan
        gap[rng.random(n) < 0.1] = np.nan
        ok = np.isfinite(acc) & np.isfinite(gap)
        better = (
            (acc[None, :] >= acc[:, None])
            & (gap[None, :] <= gap[:, None])
            & ((acc[None, :] > acc[:, None]) | (gap[None, :] < gap[:, None]))
            & ok[None, :]
        )
        np.testing.assert_array_equal(front_mask(acc, gap), ok & ~better.any(axis=1))
