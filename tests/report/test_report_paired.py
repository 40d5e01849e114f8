"""Paired comparisons against the baseline: checked against scipy and a textbook Holm example."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from ablate.report.paired import Comparison, against_baseline, holm, paired, sentence, summary_lines


def test_holm_textbook_example():
    # Sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.06.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_leaves_untested_out_of_the_family():
    adjusted = holm([0.2, math.nan, 0.6, 0.01])
    # m = 3 tested: 0.01*3 = 0.03, 0.2*2 = 0.4, 0.6*1 -> 0.6
    assert adjusted[[0, 2, 3]] == pytest.approx([0.4, 0.6, 0.03])
    assert math.isnan(adjusted[1])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]).size == 0


def test_paired_matches_scipy():
    base = {0: 0.90, 1: 0.91, 2: 0.88, 3: 0.92, 4: 0.89}
    arm = {0: 0.92, 1: 0.935, 2: 0.90, 3: 0.93, 4: 0.915, 9: 0.5}  # seed 9 has no partner: ignored
    c = paired(arm, base, "a", "b", "test_accuracy")
    seeds = sorted(base)
    x, y = np.array([arm[s] for s in seeds]), np.array([base[s] for s in seeds])
    d = x - y
    low, high = st.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=st.sem(d))
    assert c.n == 5
    assert c.diff == pytest.approx(d.mean())
    assert (c.low, c.high) == pytest.approx((low, high))
    assert c.p == pytest.approx(st.ttest_rel(x, y).pvalue)
    assert c.d_z == pytest.approx(d.mean() / d.std(ddof=1))
    assert c.tested and math.isnan(c.p_holm)  # adjusted only by against_baseline


@pytest.mark.parametrize(
    "arm, note",
    [
        ({}, "no seed where both arms completed"),
        ({0: 0.95}, "one shared seed"),
        ({0: 0.92, 1: 0.93, 2: 0.94}, "the same difference on all 3 seeds"),
    ],
)
def test_untestable_cases_say_why_and_claim_nothing(arm, note):
    base = {0: 0.90, 1: 0.91, 2: 0.92}
    c = paired(arm, base, "a", "b", "test_accuracy")
    assert note in c.note
    assert not c.tested and not c.significant
    assert math.isnan(c.p) and math.isnan(c.low) and math.isnan(c.d_z)
    lines = summary_lines([c])
    assert lines == [f"a: {c.note}."]
    assert "nan" not in " ".join(lines).lower()


def _row(arm, seed, test, status="complete"):
    ok = status == "complete"
    return {
        "arm": arm,
        "seed": seed,
        "status": status,
        "test_accuracy": test if ok else math.nan,
        "gap": (0.05 - test / 10) if ok else math.nan,
    }


def test_against_baseline_uses_shared_completed_seeds_and_holm():
    rows = [_row("base", s, 0.80 + 0.01 * s) for s in range(4)]
    rows += [_row("good", s, 0.85 + 0.01 * s + 0.002 * (s % 2)) for s in range(4)]
    rows += [_row("noisy", s, v) for s, v in enumerate([0.79, 0.83, 0.80, 0.84])]
    rows += [_row("flaky", 0, 0.9), _row("flaky", 1, 0.0, status="failed")]
    comps = against_baseline(pd.DataFrame(rows), "base", ["good", "base", "noisy", "flaky"], "test_accuracy")
    by = {c.arm: c for c in comps}
    assert list(by) == ["good", "noisy", "flaky"]  # baseline not compared with itself, order kept
    assert by["flaky"].n == 1 and not by["flaky"].tested  # the failed seed is not shared
    raw = [by["good"].p, by["noisy"].p]
    assert [by["good"].p_holm, by["noisy"].p_holm] == pytest.approx(holm(raw))
    assert by["good"].significant and not by["noisy"].significant


def test_sentences_read_in_the_direction_of_the_difference():
    up = Comparison(
        "dropout after BN",
        "dropout before BN",
        "test_accuracy",
        5,
        diff=0.018,
        low=0.009,
        high=0.027,
        d_z=2.5,
        p=0.001,
        p_holm=0.003,
    )
    assert sentence(up) == (
        "dropout after BN beats dropout before BN on test accuracy by 1.8 points "
        "(95% CI 0.9 to 2.7, Holm-adjusted p = 0.003, d_z = 2.50, 5 seeds)."
    )
    down = Comparison(
        "x", "base", "test_accuracy", 5, diff=-0.018, low=-0.027, high=-0.009, d_z=-2.5, p=0.0001, p_holm=0.0004
    )
    assert sentence(down).startswith(
        "x trails base on test accuracy by 1.8 points (95% CI 0.9 to 2.7, Holm-adjusted p < 0.001"
    )
    gap = Comparison("l2", "base", "gap", 3, diff=-0.012, low=-0.02, high=-0.004, d_z=-3.0, p=0.01, p_holm=0.02)
    assert sentence(gap).startswith("l2 narrows the generalization gap of base by 1.2 points (95% CI 0.4 to 2.0")
    lines = summary_lines([gap, Comparison("l1", "base", "gap", 3, 0.001, -0.01, 0.012, 0.1, 0.8, 0.8)])
    assert lines[0] == sentence(gap)
    assert lines[1].startswith("The other tested arm does not differ significantly from base")
