"""Findings never claim more than the data shows: over simulated factorial studies with no
effect at all, they claim something in at most 5% of studies; with one planted effect of
1.5 standard deviations they find it in most.

The studies are 3 x 3 factorials with 5 seeds, no training: synthetic tables go through the
same code as a report's Findings (analyse without the descriptive parts, then findings()).
Run with -s to see the rates.
"""

from __future__ import annotations

import numpy as np
from synthetic import factorial

from ablate.report.analysis import analyse
from ablate.report.findings import findings

FACTORS = {"a": ["none", "a1", "a2"], "b": ["none", "b1", "b2"]}
SD = 0.01  # seed-to-seed SD of one run's accuracy


def claims_over(studies: int, effect_sd: float, seed: int) -> tuple[float, float, list[str]]:
    """(share of studies whose Findings claim anything, share that claim the planted main effect
    of a=a2 on test accuracy, the Findings of the last study)."""
    rng = np.random.default_rng(seed)
    planted = (lambda lv: effect_sd * SD if lv["a"] == "a2" else 0.0) if effect_sd else None
    any_claim = hit = 0
    lines: list[str] = []
    for _ in range(studies):
        table, record = factorial(FACTORS, seeds=5, sd=SD, test_effect=planted, rng=rng)
        an = analyse(table, record, descriptive=False)
        lines = findings(an)
        sig = an.family.significant
        any_claim += bool(sig)
        hit += any(
            c.kind == "main" and c.subject == "a" and c.level == "a2" and c.metric == "test_accuracy" for c in sig
        )
    return any_claim / studies, hit / studies, lines


def test_null_studies_claim_something_in_at_most_5_percent():
    rate, _, lines = claims_over(200, 0.0, seed=11)
    print(f"\nnull 3x3 studies, 5 seeds: Findings claim an effect or interaction in {rate:.1%} of 200")
    assert rate <= 0.05, rate
    assert any("Holm-corrected together" in line for line in lines)


def test_a_planted_effect_of_1_5_sd_is_found_in_most_studies():
    rate, hit, _ = claims_over(100, 1.5, seed=12)
    print(f"\nplanted 1.5 SD main effect: claimed in {hit:.0%} of 100 studies (any claim: {rate:.0%})")
    assert hit >= 0.7, hit
