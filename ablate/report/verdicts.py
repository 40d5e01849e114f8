"""What an interaction means, read from the direction and size of the effects.

The sign of the interaction contrast alone says nothing useful: -5 and -5 giving
-20 has a negative contrast like +2 and +2 giving +3, yet the first is two harms
compounding and the second two helps overlapping. The verdict compares the
joint effect with the larger of the two effects alone (the dominant one):

- synergy: together they go further than the sum of the two, in the direction of
  the dominant effect (helps reinforce, or harms compound);
- redundancy: both go the same way, and together at least as far as the dominant
  one alone but less than the sum (they partly do the same job);
- antagonism: together they go less far than the dominant one alone, or the other
  way (one cancels or reverses the other).
"""

from __future__ import annotations

SYNERGY, REDUNDANCY, ANTAGONISM, ADDITIVE, UNTESTED = ("synergy", "redundancy", "antagonism", "additive", "untested")

DEFINITIONS = {
    SYNERGY: "together they move the metric further than the two effects alone added up, in the direction "
    "of the larger one (two helps reinforce each other, or two harms compound)",
    REDUNDANCY: "both move it the same way, and together at least as far as the larger one alone but less "
    "than the sum: they partly do the same job",
    ANTAGONISM: "together they move it less far than the larger effect alone, or the other way: one cancels "
    "or reverses the other",
}


def kind(alone_a: float, alone_b: float, joint: float) -> str:
    """synergy, redundancy or antagonism for effects measured from the reference levels."""
    dominant = alone_a if abs(alone_a) >= abs(alone_b) else alone_b
    contrast = joint - alone_a - alone_b
    direction = 1.0 if dominant > 0 else -1.0 if dominant < 0 else (1.0 if contrast >= 0 else -1.0)
    if contrast * direction > 0:
        return SYNERGY
    same_way = alone_a * alone_b > 0
    if same_way and joint * direction >= abs(dominant):
        return REDUNDANCY
    return ANTAGONISM


def verdict(
    alone_a: float, alone_b: float, joint: float, significant: bool, tested: bool, higher_is_better: bool = True
) -> tuple[str, str]:
    """(kind, words) for the page; only a significant contrast gets a kind other than additive."""
    if not tested:
        return UNTESTED, "not tested"
    if not significant:
        return ADDITIVE, "no evidence against adding up (not significant after correction)"
    k = kind(alone_a, alone_b, joint)
    dominant = alone_a if abs(alone_a) >= abs(alone_b) else alone_b
    good = (dominant > 0) == higher_is_better
    if k == SYNERGY:
        words = (
            "helps reinforce each other"
            if good and alone_a * alone_b >= 0
            else "harms compound"
            if not good and alone_a * alone_b >= 0
            else "more than additive"
        )
    elif k == REDUNDANCY:
        words = "helps overlap" if good else "harms overlap"
    else:
        words = "one cancels or reverses the other"
    return k, f"{k}: {words}"
