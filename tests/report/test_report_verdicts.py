"""Interaction verdicts from the direction and size of the effects, on hand-made effect tables
and through the whole analysis of a synthetic 2 x 2 study."""

from __future__ import annotations

import pytest
from synthetic import factorial

from ablate.report.analysis import analyse
from ablate.report.findings import interaction_sentence
from ablate.report.verdicts import ANTAGONISM, REDUNDANCY, SYNERGY, kind, verdict


@pytest.mark.parametrize(
    "alone_a, alone_b, joint, expected, words",
    [
        (-5, -5, -20, SYNERGY, "harms compound"),  # both harms, together far worse than the sum
        (+2, +2, +5, SYNERGY, "helps reinforce each other"),
        (+2, +2, +3, REDUNDANCY, "helps overlap"),  # both help, together less than the sum
        (-2, -3, -4, REDUNDANCY, "harms overlap"),
        (+3, +3, 0, ANTAGONISM, "one cancels or reverses the other"),  # one cancels the other
        (-0.6, -3.4, -2.5, ANTAGONISM, "one cancels or reverses the other"),  # L2 with early stopping
        (+4, -1, +1, ANTAGONISM, "one cancels or reverses the other"),
        (+2, +2, -1, ANTAGONISM, "one cancels or reverses the other"),  # together the other way
    ],
)
def test_each_verdict_on_hand_made_effects(alone_a, alone_b, joint, expected, words):
    assert kind(alone_a, alone_b, joint) == expected
    assert verdict(alone_a, alone_b, joint, significant=True, tested=True) == (expected, f"{expected}: {words}")


def test_the_sign_of_the_contrast_alone_does_not_decide():
    """-5 and -5 giving -20, and +2 and +2 giving +3, both have a negative contrast."""
    assert (-20 - (-5 - 5)) < 0 and (3 - (2 + 2)) < 0
    assert kind(-5, -5, -20) != kind(2, 2, 3)


def test_lower_is_better_flips_help_and_harm():
    """On the gap, two negative effects are two helps."""
    assert verdict(-2, -2, -3, True, True, higher_is_better=False) == (REDUNDANCY, "redundancy: helps overlap")


def test_no_verdict_without_a_significant_contrast():
    assert verdict(-5, -5, -20, significant=False, tested=True)[0] == "additive"
    assert verdict(-5, -5, -20, significant=False, tested=False) == ("untested", "not tested")


@pytest.mark.parametrize(
    "cells, expected",
    [
        ({("l2", "none"): -0.05, ("none", "es"): -0.05, ("l2", "es"): -0.20}, SYNERGY),
        ({("l2", "none"): 0.02, ("none", "es"): 0.02, ("l2", "es"): 0.03}, REDUNDANCY),
        ({("l2", "none"): -0.006, ("none", "es"): -0.034, ("l2", "es"): -0.025}, ANTAGONISM),
    ],
)
def test_verdicts_through_the_analysis_of_a_2x2_study(cells, expected):
    table, record = factorial(
        {"l2": ["none", "l2"], "es": ["none", "es"]},
        seeds=6,
        sd=0.0005,
        test_effect=lambda lv: cells.get((lv["l2"], lv["es"]), 0.0),
    )
    (it,) = analyse(table, record, descriptive=False).interactions
    assert it.significant, it
    assert it.verdict[0] == expected
    assert it.alone_a == pytest.approx(cells[("l2", "none")], abs=0.002)
    assert it.joint == pytest.approx(cells[("l2", "es")], abs=0.002)
    text = interaction_sentence(it)
    assert text.endswith(f"{it.verdict[1]}.") and "if they added up" in text
