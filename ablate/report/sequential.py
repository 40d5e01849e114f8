"""Intervals and verdicts that stay valid when the number of seeds depends on the data.

An adaptive study looks at its results after each planned round of seeds
(``rounds``: min, 2 x min, 3 x min, ... up to max) and stops adding seeds to a
comparison once it is decided. Looking again until something shows inflates
false claims, unless every look pays for itself. Here each of the K planned
looks at each of the m comparisons gets a two-sided t interval at confidence
1 - alpha / (K m): a Bonferroni split of alpha over the looks and the
comparisons. By the union bound, with probability at least 1 - alpha every
interval at every look covers its true difference, whatever rule chose when to
stop and which arms got more seeds, as long as each look's interval is computed
from the first n_k seeds of its arms (a fixed sample size, fixed in advance).

So the running intersection of a comparison's intervals over the looks made so
far is a valid interval too, and the verdicts read from it are all right at
once with probability at least 1 - alpha:

- different: the interval excludes zero (its sign is right);
- equivalent: the interval lies inside (-margin, +margin);
- undecided: neither, when no look is left.

Why not Holm's step-down here: each comparison carries two hypotheses (zero,
and "at least the margin"), at most one of them true. A verdict rejects one and
leaves the other possibly true, so the number of possibly true hypotheses never
falls below the number of comparisons, and the step-down thresholds (Holm's,
refined for this logical structure as Shaffer's) stay at alpha / m for every
verdict: Bonferroni. Unlike Holm-adjusted p-values, it gives intervals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import special

ALPHA = 0.05
DIFFERENT, EQUIVALENT, UNDECIDED, OPEN = "different", "equivalent", "undecided", "open"


def look_levels(schedule: Sequence[int], comparisons: int, alpha: float = ALPHA) -> tuple[float, ...]:
    """Two-sided error rate of one interval at each look: alpha split evenly over the
    planned looks and the comparisons (spending it in proportion to each look's seeds
    was tried and decided no sooner: the first look's few seeds decide little anyway)."""
    return tuple(alpha / (len(schedule) * max(comparisons, 1)) for _ in schedule)


@dataclass(frozen=True)
class Look:
    """One comparison at one look: an estimate, its standard error and degrees of freedom."""

    n: int  # seeds per arm at this look
    estimate: float
    se: float = math.nan
    df: int = 0

    @property
    def usable(self) -> bool:
        return math.isfinite(self.estimate) and math.isfinite(self.se) and self.se > 0 and self.df > 0

    def interval(self, level: float) -> tuple[float, float]:
        """(low, high) with two-sided error ``level`` (NaN when there is no noise estimate)."""
        if not self.usable:
            return math.nan, math.nan
        half = float(special.stdtrit(self.df, 1 - level / 2)) * self.se
        return self.estimate - half, self.estimate + half

    def p(self) -> float:
        """Two-sided p of the t test of zero difference at this look alone."""
        if not self.usable:
            return math.nan
        return float(2 * special.stdtr(self.df, -abs(self.estimate) / self.se))


@dataclass(frozen=True)
class Sequential:
    """A comparison over its looks: the running interval, its verdict, the adjusted p."""

    estimate: float  # at the last usable look
    low: float
    high: float
    p: float  # min over looks of the look's p scaled by alpha / its level (Bonferroni), capped at 1
    verdict: str
    n: int  # seeds per arm at the last look
    decided_at: int = 0  # seeds per arm at the look that decided it (0: undecided)


def combine(looks: Sequence[Look], schedule: Sequence[int], comparisons: int, margin: float, final: bool) -> Sequential:
    """The running intersection of the looks' intervals and the verdict it supports.

    ``final``: no look is left for this comparison, so an open one is undecided."""
    levels = dict(zip(schedule, look_levels(schedule, comparisons)))
    low, high, decided_at = -math.inf, math.inf, 0
    ps = []
    for look in looks:
        lo, hi = look.interval(levels[look.n])
        if math.isfinite(lo):
            ps.append(look.p() * ALPHA / levels[look.n])
            if max(low, lo) > min(high, hi):  # no overlap: a miss the union bound allows; keep what was
                continue
            low, high = max(low, lo), min(high, hi)
            if not decided_at and decide(low, high, margin) != OPEN:
                decided_at = look.n
    last = next((x for x in reversed(looks) if math.isfinite(x.estimate)), None)
    estimate = last.estimate if last else math.nan
    if not ps:
        return Sequential(estimate, math.nan, math.nan, math.nan, UNDECIDED if final else OPEN, last.n if last else 0)
    verdict = decide(low, high, margin)
    if verdict == OPEN and final:
        verdict = UNDECIDED
    p = min(1.0, min(ps))
    return Sequential(estimate, low, high, p, verdict, last.n if last else 0, decided_at)


def decide(low: float, high: float, margin: float) -> str:
    """different if the interval excludes zero, equivalent if inside +-margin, else open."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return OPEN
    if low > 0 or high < 0:
        return DIFFERENT
    if -margin < low and high < margin:
        return EQUIVALENT
    return OPEN
