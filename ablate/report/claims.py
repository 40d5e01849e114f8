"""Everything the Findings could claim, tested together under one Holm correction.

Where the design crosses its factors (every combination of their levels is an
arm), the Findings answer per factor: its main effect on test accuracy and on
the generalization gap (each level against the reference level, averaged over
the levels of the other factors), and each two-way interaction on test
accuracy. These are contrasts of one block model per metric (blocks.py). Where
the factors are not crossed (leave-one-out, add-one-in, searches), main effects
would mix other factors in, so the Findings compare each arm with the baseline
instead (paired by seed, paired.py). Either way every hypothesis the Findings
could state is in one family, Holm-corrected together, so the chance that a
null study's Findings claim anything is at most 5%.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import pandas as pd

from ablate.report.blocks import BlockFit, contrast, fit
from ablate.report.paired import ALPHA, against_baseline, holm, seed_values
from ablate.report.verdicts import verdict

CLAIM_METRICS = ("test_accuracy", "gap")
HIGHER_IS_BETTER = {"test_accuracy": True, "gap": False, "val_accuracy": True}
MAIN, INTERACTION, ARM, BEST = "main", "interaction", "arm", "best"


@dataclass(frozen=True)
class Claim:
    """One hypothesis: a main effect (level vs ref of factor), an interaction of two
    factors' levels, an arm against the baseline (subject = arm, ref = baseline), or
    the best arm on validation accuracy against another (subject = that arm, ref = best)."""

    kind: str
    metric: str
    subject: str
    level: str = ""
    ref: str = ""
    other: str = ""
    other_level: str = ""
    other_ref: str = ""
    estimate: float = math.nan
    low: float = math.nan
    high: float = math.nan
    p: float = math.nan
    df: int = 0
    note: str = ""
    alone_a: float = math.nan
    alone_b: float = math.nan
    joint: float = math.nan
    n: int = 0
    p_holm: float = math.nan
    decision: str = ""  # an adaptive study's verdict: different, equivalent, undecided or open

    @property
    def tested(self) -> bool:
        return math.isfinite(self.p)

    @property
    def significant(self) -> bool:
        return math.isfinite(self.p_holm) and self.p_holm < ALPHA

    @property
    def verdict(self) -> tuple[str, str]:
        """(kind, words) of an interaction, from the direction and size of its effects."""
        return verdict(
            self.alone_a,
            self.alone_b,
            self.joint,
            self.significant,
            self.tested,
            HIGHER_IS_BETTER.get(self.metric, True),
        )


@dataclass(frozen=True)
class Family:
    """The claims with Holm-adjusted p-values; ``model`` says which test produced them."""

    claims: tuple[Claim, ...]
    crossed: bool
    model: str
    df: int = 0
    margin: float = math.nan  # an adaptive study's margin (a fraction); NaN for a fixed-seed study
    rounds: tuple[int, ...] = ()  # an adaptive study's planned seeds per arm after each round
    open_arms: tuple[str, ...] = ()  # arms an adaptive study's next round needs

    @property
    def adaptive(self) -> bool:
        return bool(self.rounds)

    @property
    def tested(self) -> list[Claim]:
        return [c for c in self.claims if c.tested]

    @property
    def significant(self) -> list[Claim]:
        return [c for c in self.claims if c.significant]


def arm_levels(table: pd.DataFrame, levels: pd.DataFrame, varied: Sequence[str]) -> dict[str, dict[str, str]]:
    """{arm: {factor: level}} for the varied factors, from each arm's first row."""
    out: dict[str, dict[str, str]] = {}
    if not levels.index.equals(table.index):  # built together (factor_levels): row for row
        raise ValueError("levels must have the table's index")
    columns = {f: levels[f].tolist() for f in varied}
    for pos, arm in enumerate(table["arm"].astype(str)):
        if arm not in out:
            out[arm] = {f: str(columns[f][pos]) for f in varied}
    return out


def is_crossed(arms: Mapping[str, Mapping[str, str]], varied: Sequence[str]) -> bool:
    """True when every combination of the varied factors' levels is some arm."""
    if not varied or not arms:
        return False
    seen = {tuple(lv[f] for f in varied) for lv in arms.values()}
    sizes = [len({lv[f] for lv in arms.values()}) for f in varied]
    return len(seen) == math.prod(sizes)


def _order(arms: Mapping[str, Mapping[str, str]], f: str) -> list[str]:
    return list(dict.fromkeys(lv[f] for lv in arms.values()))


def _cell(arms: Mapping[str, Mapping[str, str]], where: Mapping[str, str]) -> list[str]:
    """The arms at the given levels, in design order (one pass over the arms per factor named)."""
    found = list(arms)
    for k, v in where.items():
        found = [a for a in found if arms[a][k] == v]
    return found


def _mean_weights(plus: Sequence[str], minus: Sequence[str], scale: float = 1.0) -> dict[str, float]:
    """Weights of mean(plus) - mean(minus), each arm counted once."""
    w: dict[str, float] = {}
    for group, sign in ((plus, scale), (minus, -scale)):
        for a in group:
            w[a] = w.get(a, 0.0) + sign / len(group)
    return w


def _add(*parts: Mapping[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in parts:
        for a, w in part.items():
            out[a] = out.get(a, 0.0) + w
    return out


def main_claims(
    model: BlockFit, arms: Mapping[str, Mapping[str, str]], varied: Sequence[str], ref: Mapping[str, str], metric: str
) -> list[Claim]:
    """Each non-reference level of each factor against its reference, averaged over the other factors."""
    out = []
    for f in varied:
        base = _cell(arms, {f: ref[f]})
        for level in _order(arms, f):
            if level == ref[f]:
                continue
            c = contrast(model, _mean_weights(_cell(arms, {f: level}), base))
            out.append(
                Claim(
                    MAIN,
                    metric,
                    f,
                    level,
                    ref[f],
                    estimate=c.estimate,
                    low=c.low,
                    high=c.high,
                    p=c.p,
                    df=c.df,
                    note=c.note,
                )
            )
    return out


def interaction_claims(
    model: BlockFit, arms: Mapping[str, Mapping[str, str]], varied: Sequence[str], ref: Mapping[str, str], metric: str
) -> list[Claim]:
    """(a, b) against (a0, b0) for every pair of factors: together minus the two alone."""
    out = []
    for f, g in itertools.combinations(varied, 2):
        a0, b0 = ref[f], ref[g]
        for a, b in itertools.product(_order(arms, f), _order(arms, g)):
            if a == a0 or b == b0:
                continue
            c11, c10, c01, c00 = (_cell(arms, {f: x, g: y}) for x, y in ((a, b), (a, b0), (a0, b), (a0, b0)))
            if not (c11 and c10 and c01 and c00):
                continue  # the design never crossed these levels
            alone_a, alone_b, joint = (contrast(model, _mean_weights(c, c00)) for c in (c10, c01, c11))
            inter = contrast(model, _add(_mean_weights(c11, c10), _mean_weights(c00, c01)))
            out.append(
                Claim(
                    INTERACTION,
                    metric,
                    f,
                    a,
                    a0,
                    g,
                    b,
                    b0,
                    inter.estimate,
                    inter.low,
                    inter.high,
                    inter.p,
                    inter.df,
                    inter.note,
                    alone_a.estimate,
                    alone_b.estimate,
                    joint.estimate,
                )
            )
    return out


def arm_claims(table: pd.DataFrame, baseline: str, arms: Sequence[str]) -> list[Claim]:
    """Each arm against the baseline, paired by seed (the raw p-values; Holm comes later)."""
    out = []
    for metric in CLAIM_METRICS:
        for c in against_baseline(table, baseline, arms, metric):
            out.append(
                Claim(
                    ARM,
                    metric,
                    c.arm,
                    ref=baseline,
                    estimate=c.diff,
                    low=c.low,
                    high=c.high,
                    p=c.p,
                    df=max(c.n - 1, 0),
                    note=c.note,
                    n=c.n,
                )
            )
    return out


def best_claims(table: pd.DataFrame, best: str, metric: str = "val_accuracy") -> list[Claim]:
    """The best arm (chosen on ``metric``) minus each other arm, in the block model.

    The best was picked by the same data, which inflates its lead; so each p-value is
    Bonferroni-adjusted over every pair of arms, which covers whichever pair the choice
    picks. An arm whose comparison does not survive cannot be told apart from the best.
    """
    model = fit(seed_values(table, metric))
    pairs = len(model.arms) * (len(model.arms) - 1) / 2
    out = []
    for arm in model.arms:
        if arm != best:
            c = contrast(model, {best: 1.0, arm: -1.0})
            note = f"p adjusted over all {int(pairs)} pairs of arms (the best was picked by these data)"
            out.append(
                Claim(
                    BEST,
                    metric,
                    arm,
                    ref=best,
                    estimate=c.estimate,
                    low=c.low,
                    high=c.high,
                    p=min(1.0, c.p * pairs) if c.tested else math.nan,
                    df=c.df,
                    note=note if c.tested else c.note,
                )
            )
    return out


def family(
    table: pd.DataFrame,
    levels: pd.DataFrame,
    varied: Sequence[str],
    ref: Mapping[str, str],
    baseline: str | None,
    arm_names: Sequence[str],
    best: str | None = None,
) -> Family:
    """Every claim the Findings could make, with Holm over all of them."""
    arms = arm_levels(table, levels, varied) if len(table) and varied else {}
    crossed = is_crossed(arms, varied)
    claims: list[Claim] = []
    df = 0
    if crossed:
        for metric in CLAIM_METRICS:
            model = fit(seed_values(table, metric))
            df = max(df, model.df)
            claims += main_claims(model, arms, varied, ref, metric)
            if metric == "test_accuracy":
                claims += interaction_claims(model, arms, varied, ref, metric)
    elif baseline:
        claims = arm_claims(table, baseline, arm_names)
    if best is not None:
        claims += best_claims(table, best)
    how = "block" if crossed else "paired" if baseline else "none"
    adjusted = holm([c.p for c in claims])
    return Family(tuple(replace(c, p_holm=float(q)) for c, q in zip(claims, adjusted)), crossed, how, df)
