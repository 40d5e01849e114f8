"""The arm + seed block model behind the Findings' tests, checked against scipy and by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ablate.report.blocks import contrast, fit


def _values(matrix: np.ndarray) -> dict[str, dict[int, float]]:
    return {f"arm{i}": {s: float(v) for s, v in enumerate(row) if math.isfinite(v)} for i, row in enumerate(matrix)}


def test_two_arms_is_the_paired_t_test():
    rng = np.random.default_rng(3)
    a = rng.normal(0.9, 0.02, 6)
    b = a + rng.normal(0.01, 0.01, 6)
    c = contrast(fit(_values(np.vstack([a, b]))), {"arm1": 1.0, "arm0": -1.0})
    ref = stats.ttest_rel(b, a)
    assert c.estimate == pytest.approx(float(np.mean(b - a)))
    assert c.p == pytest.approx(ref.pvalue) and c.df == 5
    half = stats.t.ppf(0.975, 5) * np.std(b - a, ddof=1) / math.sqrt(6)
    assert (c.low, c.high) == pytest.approx((c.estimate - half, c.estimate + half))


def test_complete_design_pools_the_residual_variance_of_every_arm():
    """Residual mean square of the two-way model, (A-1)(S-1) degrees of freedom, by hand."""
    rng = np.random.default_rng(4)
    y = rng.normal(0, 1, (4, 5)) + np.arange(5)  # 4 arms, 5 seeds with seed effects
    resid = y - y.mean(1, keepdims=True) - y.mean(0, keepdims=True) + y.mean()
    mse = float((resid**2).sum() / (3 * 4))
    model = fit(_values(y))
    assert model.df == 12 and model.mse == pytest.approx(mse)
    c = contrast(model, {"arm0": 0.5, "arm1": 0.5, "arm2": -0.5, "arm3": -0.5})
    est = (y[0] + y[1] - y[2] - y[3]).mean() / 2
    assert c.estimate == pytest.approx(est)
    assert c.se == pytest.approx(math.sqrt(mse * 1.0 / 5))  # sum of squared weights 1, over 5 seeds
    assert c.p == pytest.approx(2 * stats.t.sf(abs(est) / c.se, 12))


def test_a_missing_run_is_fitted_not_dropped():
    y = np.array([[0.90, 0.92, 0.91, 0.93], [0.95, 0.96, np.nan, 0.97], [0.80, 0.81, 0.82, 0.80]])
    model = fit(_values(y))
    assert model.runs == 11 and model.df == 11 - (3 + 3)
    c = contrast(model, {"arm1": 1.0, "arm0": -1.0})
    assert c.tested and 0.03 < c.estimate < 0.06


def test_untestable_comparisons_say_why():
    same = np.tile([0.9, 0.91, 0.92], (3, 1))  # identical arms
    c = contrast(fit(_values(same)), {"arm1": 1.0, "arm0": -1.0})
    assert c.estimate == pytest.approx(0.0) and not c.tested and "no seed-to-seed variation" in c.note
    one_seed = fit(_values(np.array([[0.9], [0.95]])))
    assert not contrast(one_seed, {"arm1": 1.0, "arm0": -1.0}).tested
    apart = fit({"a": {0: 0.9, 1: 0.91}, "b": {0: 0.93, 1: 0.95}, "c": {5: 0.8, 6: 0.82}})
    assert "do not overlap" in contrast(apart, {"c": 1.0, "a": -1.0}).note
    assert "no completed run of ghost" in contrast(apart, {"ghost": 1.0, "a": -1.0}).note


def _dense(values: dict[str, dict[int, float]], weights: dict[str, float]) -> tuple[float, float, int, bool]:
    """(estimate, standard error / sqrt(mse), residual df, identified) from the dense
    least-squares design, arm and seed indicator columns, solved with numpy's pseudo-inverse."""
    cells = [(a, s, v) for a, per in values.items() for s, v in per.items()]
    arms, seeds = list(dict.fromkeys(a for a, _, _ in cells)), list(dict.fromkeys(s for _, s, _ in cells))
    x = np.zeros((len(cells), len(arms) + len(seeds)))
    for r, (a, s, _) in enumerate(cells):
        x[r, arms.index(a)] = x[r, len(arms) + seeds.index(s)] = 1.0
    y = np.array([v for _, _, v in cells])
    g = np.linalg.pinv(x.T @ x)
    c = np.zeros(x.shape[1])
    for a, w in weights.items():
        c[arms.index(a)] = w
    identified = bool(np.abs(c @ g @ (x.T @ x) - c).max() < 1e-8)
    return float(c @ g @ x.T @ y), math.sqrt(float(c @ g @ c)), len(cells) - np.linalg.matrix_rank(x), identified


@pytest.mark.parametrize("seed", range(6))
def test_the_absorbed_fit_equals_dense_least_squares_on_incomplete_designs(seed):
    """Missing runs, arms on disjoint seed sets: estimate, standard error, degrees of freedom and
    what is identified are those of the dense design, without its arms x arms matrix."""
    rng = np.random.default_rng(seed)
    arms, seeds = int(rng.integers(3, 9)), int(rng.integers(2, 6))
    y = rng.normal(0.9, 0.02, (arms, seeds)) + rng.normal(0, 0.02, seeds)
    y[rng.random((arms, seeds)) < 0.3] = np.nan
    if seed % 2:  # a block of arms that never shares a seed with the others
        y[: arms // 2, : seeds // 2] = np.nan
        y[arms // 2 :, seeds // 2 :] = np.nan
    values = {k: v for k, v in _values(y).items() if v}
    model = fit(values)
    names = list(values)
    for a, b in [(names[0], n) for n in names[1:]] + [(names[-1], names[1])]:
        weights = {a: 1.0, b: -1.0}
        est, unscaled_se, df, identified = _dense(values, weights)
        c = contrast(model, weights)
        assert model.df == df
        assert ("do not overlap" not in c.note) == identified
        if identified:
            assert c.estimate == pytest.approx(est, abs=1e-12)
            if c.tested:
                assert c.se == pytest.approx(unscaled_se * math.sqrt(model.mse), rel=1e-9)
