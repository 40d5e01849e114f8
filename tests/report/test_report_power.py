"""Power of a paired t-test over seeds: noncentral t (scipy.stats.nct) checked by simulation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ablate.report.power import min_detectable, paired_power, paired_spread, power_lines, seeds_needed


def test_power_at_no_difference_is_alpha_and_grows_with_seeds():
    assert paired_power(0.0, 0.01, 5) == pytest.approx(0.05)
    assert paired_power(0.01, 0.01, 4) < paired_power(0.01, 0.01, 8) < paired_power(0.01, 0.01, 16)
    assert math.isnan(paired_power(0.01, 0.01, 1)) and math.isnan(paired_power(0.01, 0.0, 5))


@pytest.mark.parametrize("n", [2, 3, 5, 10, 40])
@pytest.mark.parametrize("d", [0.0, 0.3, 1.0, 2.5, 8.0])
def test_power_is_scipy_stats_noncentral_t(n, d):
    """Computed with scipy.special (fast to import); must equal scipy.stats.nct's answer."""
    df, crit, ncp = n - 1, stats.t.ppf(0.975, n - 1), d * math.sqrt(n)
    upper, lower = stats.nct.sf(crit, df, ncp), stats.nct.cdf(-crit, df, ncp)
    # scipy gives NaN deep in a tail (checked by simulation: that tail is ~0 there)
    expected = (upper if math.isfinite(upper) else float(ncp > crit)) + (lower if math.isfinite(lower) else 0.0)
    assert paired_power(d * 0.01, 0.01, n) == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("n", [3, 5, 10])
def test_min_detectable_difference_has_80_percent_power_by_simulation(n):
    sd = 0.01
    mde = min_detectable(sd, n)
    assert paired_power(mde, sd, n) == pytest.approx(0.8, abs=1e-9)
    rng = np.random.default_rng(n)
    diffs = rng.normal(mde, sd, size=(40_000, n))
    rejected = (stats.ttest_1samp(diffs, 0.0, axis=1).pvalue < 0.05).mean()
    assert rejected == pytest.approx(0.8, abs=0.01)


def test_seeds_needed_is_the_first_seed_count_with_enough_power():
    n = seeds_needed(0.01, 0.01)
    assert paired_power(0.01, 0.01, n) >= 0.8 > paired_power(0.01, 0.01, n - 1)
    assert n == 10  # d = 1: the textbook paired-t sample size at 80% power, alpha 0.05
    assert seeds_needed(1e-6, 0.05) is None  # beyond any reasonable number of seeds


def _table(diff_sd: float, seeds: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    base = rng.normal(0.9, 0.02, seeds)
    rows = [{"arm": "base", "seed": s, "status": "complete", "test_accuracy": base[s]} for s in range(seeds)]
    for arm in ("x", "y"):
        d = rng.normal(0.0, diff_sd, seeds)
        rows += [{"arm": arm, "seed": s, "status": "complete", "test_accuracy": base[s] + d[s]} for s in range(seeds)]
    return pd.DataFrame(rows)


def test_paired_spread_pools_the_differences_against_the_baseline():
    table = _table(0.01)
    sd, n = paired_spread(table, "base")
    wide = table.pivot(index="seed", columns="arm", values="test_accuracy")
    pooled = math.sqrt(np.mean([np.var(wide[a] - wide["base"], ddof=1) for a in ("x", "y")]))
    assert n == 5 and sd == pytest.approx(pooled)
    sd_none, n_none = paired_spread(table, None)  # no baseline: from the block model's residuals
    assert n_none == 5 and 0.5 * sd < sd_none < 2 * sd


def test_power_lines_state_the_detectable_difference_and_seeds_needed():
    lines = power_lines(_table(0.01), "base")
    sd, n = paired_spread(_table(0.01), "base")
    assert f"{100 * min_detectable(sd, n):.2f} points" in lines[0] and "with 5 seeds" in lines[0]
    assert lines[1].startswith("Detecting a difference of 1 point with 80% power would need ")
    assert f"{seeds_needed(0.01, sd)} seeds" in lines[1]
    assert "not computable" in power_lines(_table(0.01, seeds=1), "base")[0]
