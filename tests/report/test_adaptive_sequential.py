"""Adaptive seeds: intervals valid under the stopping rule, verdicts read from them.

The look intervals are checked against scipy.stats.t; simulated studies (adaptive_sim.py,
the same analysis a report makes) check the guarantees at a size the suite affords:
benchmarks/adaptive_seeds.py runs the same with 2,000 studies each. Run with -s to see the rates.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from adaptive_sim import SD, adaptive, fixed, full_study, planted
from scipy import stats

from ablate.engine.store.record import seed_rounds as rounds
from ablate.report.sequential import DIFFERENT, EQUIVALENT, OPEN, UNDECIDED, Look, combine, decide, look_levels


def test_rounds_add_min_seeds_until_max():
    assert rounds(3, 12) == (3, 6, 9, 12)
    assert rounds(3, 10) == (3, 6, 9, 10)
    assert rounds(4, 4) == (4,)
    with pytest.raises(ValueError):
        rounds(5, 3)


def test_alpha_is_split_over_looks_and_comparisons():
    levels = look_levels((3, 6, 9, 12), 13)
    assert sum(levels) * 13 == pytest.approx(0.05)


def test_a_look_interval_is_scipys_t_interval():
    look = Look(6, 0.012, 0.004, 5)
    low, high = look.interval(0.01)
    ref = stats.t.interval(0.99, 5, loc=0.012, scale=0.004)
    assert (low, high) == pytest.approx(ref, rel=1e-12)
    assert look.p() == pytest.approx(2 * stats.t.sf(3.0, 5), rel=1e-12)


def test_verdicts_read_from_the_interval():
    assert decide(0.001, 0.02, 0.01) == DIFFERENT
    assert decide(-0.02, -0.001, 0.01) == DIFFERENT
    assert decide(-0.004, 0.006, 0.01) == EQUIVALENT
    assert decide(-0.004, 0.012, 0.01) == OPEN
    assert decide(math.nan, math.nan, 0.01) == OPEN


def test_the_interval_is_the_running_intersection_and_a_verdict_stays():
    # wide first look, then a narrow one inside +-margin: equivalent from the second look on
    looks = [Look(3, 0.0, 0.01, 14), Look(6, 0.001, 0.001, 35)]
    s = combine(looks, (3, 6, 9), 4, margin=0.01, final=False)
    level = look_levels((3, 6, 9), 4)[0]
    assert (s.low, s.high) == pytest.approx(looks[1].interval(level))
    assert s.verdict == EQUIVALENT and s.decided_at == 6
    # a later look that drifts does not undo the intersection: the verdict stays
    drift = [*looks, Look(9, 0.009, 0.001, 56)]
    later = combine(drift, (3, 6, 9), 4, margin=0.01, final=True)
    assert later.verdict == EQUIVALENT and later.high <= s.high
    # open while looks are left, undecided when none is
    wide = [Look(3, 0.0, 0.01, 14)]
    assert combine(wide, (3, 6), 4, 0.01, final=False).verdict == OPEN
    assert combine(wide, (3, 6), 4, 0.01, final=True).verdict == UNDECIDED


def test_null_studies_rarely_call_anything_different():
    """No effect at all, a small margin (most studies look at every round): a false
    'different' anywhere in a study at most 5% of the time."""
    rng = np.random.default_rng(5)
    studies = 40
    false = sum(adaptive(*full_study(rng, 12, None), 3, 12, 0.5 * SD * 100).any_false_different for _ in range(studies))
    print(f"\nnull studies with a false 'different': {false} of {studies}")
    assert false / studies <= 0.05


def test_no_effect_with_a_margin_of_2_sd_is_equivalent():
    rng = np.random.default_rng(6)
    outs = [adaptive(*full_study(rng, 12, None), 3, 12, 2 * SD * 100) for _ in range(20)]
    share = np.mean([all(v == EQUIVALENT for v in o.verdicts.values()) for o in outs])
    print(f"\nevery main effect equivalent in {share:.0%} of 20 studies")
    assert share >= 0.8


def test_a_planted_effect_is_found_with_fewer_runs_than_a_fixed_design_deciding_as_often():
    effect, truth = planted(4.0)
    rng = np.random.default_rng(7)
    hits = runs = decided = fixed_decided = 0
    studies = 20
    for _ in range(studies):
        table, record = full_study(rng, 12, effect)
        out = adaptive(table, record, 3, 12, 2 * SD * 100, truth)
        hits += out.verdicts[("a", "a1", "test_accuracy")] == DIFFERENT
        runs += out.runs
        decided += out.all_decided
        fixed_decided += fixed(table, record, 8, 2 * SD * 100, truth).all_decided
    print(f"\nplanted: different in {hits}/{studies}, mean runs {runs / studies:.1f} (fixed 8 seeds: 64 runs)")
    assert hits / studies >= 0.8
    assert decided >= fixed_decided  # decides every main effect at least as often as 8 fixed seeds...
    assert runs / studies < 0.9 * 8 * 8  # ...with fewer runs on average


def test_arms_against_the_baseline_stop_getting_seeds_once_decided():
    """A design whose factors are not crossed (add-one-in): each arm against the baseline,
    paired by seed; a decided arm leaves the next round, the baseline stays for the open ones."""
    from synthetic import factorial

    from ablate.report.analysis import analyse
    from ablate.report.findings import findings

    effect = 20 * SD
    table, record = factorial(
        {"a": ["none", "a1"], "b": ["none", "b1"], "c": ["none", "c1"]},
        seeds=12,
        sd=SD,
        test_effect=lambda lv: effect if lv["a"] == "a1" else 0.0,
        rng=np.random.default_rng(8),
    )
    arms = ["baseline", "a1", "b1", "c1"]
    table = table[table["arm"].isin(arms) & (table["seed"] < 6)].reset_index(drop=True)
    record = record.replace(
        arms=tuple(arms), design={"kind": "add_one_in", "seeds": {"min": 3, "max": 12}, "margin": 0.5 * SD * 100}
    )
    an = analyse(table, record, descriptive=False)
    fam = an.family
    assert fam.model == "paired" and not fam.crossed
    verdicts = {(c.subject, c.metric): c.decision for c in fam.claims}
    assert verdicts[("a1", "test_accuracy")] == DIFFERENT and verdicts[("a1", "gap")] == DIFFERENT
    assert verdicts[("b1", "test_accuracy")] == OPEN  # a margin of half an SD: not settled at 6 seeds
    assert "a1" not in fam.open_arms and {"baseline", "b1", "c1"} <= set(fam.open_arms)
    lines = findings(an)
    assert any(line.startswith("a1 against baseline: test accuracy different") for line in lines)
    # the paired look is scipy's paired t interval at the look's level
    a1 = table[table["arm"] == "a1"].sort_values("seed")["test_accuracy"].to_numpy()
    base = table[table["arm"] == "baseline"].sort_values("seed")["test_accuracy"].to_numpy()
    d = a1 - base
    level = look_levels((3, 6, 9, 12), len(fam.claims))[0]
    half = stats.t.ppf(1 - level / 2, 5) * d.std(ddof=1) / math.sqrt(6)
    claim = next(c for c in fam.claims if c.subject == "a1" and c.metric == "test_accuracy")
    first = d[:3]
    half3 = stats.t.ppf(1 - level / 2, 2) * first.std(ddof=1) / math.sqrt(3)
    expected = (max(d.mean() - half, first.mean() - half3), min(d.mean() + half, first.mean() + half3))
    assert (claim.low, claim.high) == pytest.approx(expected)
