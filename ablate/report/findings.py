"""The Findings: the study's question answered in plain words, claiming only what survives.

Per factor, its main effect on test accuracy and on the gap with a 95% interval
(always shown: that is the answer to "how much does each help?"), but called
significant only when it survives the Holm correction over every claim these
findings could make (claims.py). Interactions, arm differences and the best
arm's lead are stated only when they survive it too. fANOVA shares and the
Pareto front always name a winner, so they enter only as descriptive notes,
and only when some difference among the arms survived. Shared by index.html
and summary.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ablate.report.analysis import Analysis
from ablate.report.claims import ALPHA, ARM, BEST, CLAIM_METRICS, HIGHER_IS_BETTER, INTERACTION, MAIN, Claim
from ablate.report.fmt import fmt, format_p, format_pct_ci, points
from ablate.report.power import power_lines
from ablate.report.sequential import DIFFERENT, EQUIVALENT, OPEN, UNDECIDED

MAX_FINDINGS = 5  # significant arm differences per metric; all are in the tables below
METRIC_WORDS = {"test_accuracy": "test accuracy", "gap": "generalization gap", "val_accuracy": "validation accuracy"}
SATURATED = 1 - 1e-9


def findings(an: Analysis) -> list[str]:
    """Every Findings line, in reading order."""
    out = factor_lines(an) + interaction_lines(an) + arm_lines(an)
    out += best_lines(an) + [correction_line(an)] + descriptive_lines(an) + saturation_lines(an)
    return [line for line in out if line]


def _ci(c: Claim) -> str:
    return f"95% CI {points(c.low)} to {points(c.high)}"


def _verdict(c: Claim, meaning: str = "") -> str:
    """The claim's numbers with its correction status (and, if significant, what it means)."""
    if c.decision:
        return adaptive_verdict(c)
    if not c.tested:
        return f"{points(c.estimate)} points (no test: {c.note})"
    status = f"significant{meaning}" if c.significant else "not significant"
    return f"{points(c.estimate)} points ({_ci(c)}, Holm-adjusted {format_p(c.p_holm)}: {status})"


def adaptive_verdict(c: Claim) -> str:
    """An adaptive study's verdict in words, with the interval it is read from."""
    interval = f"interval {points(c.low)} to {points(c.high)}" if math.isfinite(c.low) else "no interval"
    words = {
        DIFFERENT: "different",
        EQUIVALENT: "equivalent within the margin",
        UNDECIDED: "undecided",
        OPEN: "open (the study has rounds left)",
    }[c.decision]
    return f"{words}, {points(c.estimate)} points ({interval}; {c.note})"


def _others(an: Analysis, *factors: str) -> str:
    rest = [f for f in an.varied if f not in factors]
    if not rest:
        return ""
    return ", averaged over the levels of " + _join(rest)


def _join(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def factor_lines(an: Analysis) -> list[str]:
    """Each factor's main effect on test accuracy and on the gap (crossed designs)."""
    mains = {(c.subject, c.level, c.metric): c for c in an.family.claims if c.kind == MAIN}
    out = []
    for (f, level, metric), c in mains.items():
        if metric != "test_accuracy":
            continue
        gap = mains.get((f, level, "gap"))
        line = f"{f}: {level} against {c.ref}{_others(an, f)}: test accuracy {_verdict(c)}"
        if gap is not None:
            line += f"; generalization gap {_verdict(gap, ', narrower' if gap.estimate < 0 else ', wider')}"
        out.append(line + ".")
    return out


def interaction_sentence(c: Claim, averaged: str = "") -> str:
    """One interaction in words: alone, together, what adding up would give, and the verdict."""
    words = METRIC_WORDS.get(c.metric, c.metric)
    added = c.alone_a + c.alone_b
    head = (
        f"{c.subject}={c.level} with {c.other}={c.other_level} on {words}{averaged}: alone "
        f"{points(c.alone_a)} and {points(c.alone_b)} points, together {points(c.joint)}, "
        f"against {points(added)} if they added up; interaction {points(c.estimate)} points"
    )
    if c.decision:
        return f"{head}: {adaptive_verdict(c)}; {c.verdict[1]}."
    if not c.tested:
        return f"{head} (no test: {c.note})."
    return f"{head} ({_ci(c)}, Holm-adjusted {format_p(c.p_holm)}): {c.verdict[1]}."


def interaction_lines(an: Analysis) -> list[str]:
    sig = [c for c in an.interactions if c.significant]
    out = [interaction_sentence(c, _others(an, c.subject, c.other)) for c in sig[:MAX_FINDINGS]]
    if len(sig) > MAX_FINDINGS:
        out.append(f"… and {len(sig) - MAX_FINDINGS} more significant interactions (see Factors).")
    return out


def arm_lines(an: Analysis) -> list[str]:
    """Significant arm-against-baseline differences (designs whose factors are not crossed);
    in an adaptive study, every arm's verdicts, one sentence per arm."""
    if an.family.adaptive:
        return adaptive_arm_lines(an)
    out = []
    for metric in CLAIM_METRICS:
        sig = [c for c in an.family.claims if c.kind == ARM and c.metric == metric and c.significant]
        for c in sig[:MAX_FINDINGS]:
            better = (c.estimate > 0) == HIGHER_IS_BETTER[metric]
            verb = ("narrows" if better else "widens") if metric == "gap" else ("beats" if better else "trails")
            out.append(f"{c.subject} {verb} {c.ref} on {METRIC_WORDS[metric]}: {_verdict(c)}, paired over {c.n} seeds.")
        if len(sig) > MAX_FINDINGS:
            out.append(
                f"… and {len(sig) - MAX_FINDINGS} more significant differences on "
                f"{METRIC_WORDS[metric]} (see Against the baseline)."
            )
    return out


def adaptive_arm_lines(an: Analysis) -> list[str]:
    """Each arm against the baseline on test accuracy and the gap, with its verdicts."""
    arms = {(c.subject, c.metric): c for c in an.family.claims if c.kind == ARM}
    out = []
    for (arm, metric), c in arms.items():
        if metric != "test_accuracy":
            continue
        line = f"{arm} against {c.ref}: test accuracy {_verdict(c)}"
        gap = arms.get((arm, "gap"))
        if gap is not None:
            line += f"; generalization gap {_verdict(gap)}"
        out.append(line + ".")
    return out


def best_lines(an: Analysis) -> list[str]:
    """The best arm on validation accuracy and whether the data can tell it apart from the rest."""
    if an.best is None:
        return []
    r = an.board[an.board["arm"] == an.best].iloc[0]
    n = int(r["n_complete"])
    head = (
        f"Highest mean validation accuracy (arms are chosen on validation, never on test): {an.best}, "
        "validation "
        f"{fmt(100 * r['val_mean'], '{:.1f}%')}, test "
        f"{format_pct_ci(r['test_mean'], r['test_low'], r['test_high'], n)}, gap "
        f"{format_pct_ci(r['gap_mean'], r['gap_low'], r['gap_high'], n, unit=' pp')}."
    )
    others = [c for c in an.family.claims if c.kind == BEST]
    if not others:
        return [head]
    near = [c.subject for c in others if not c.significant]
    if len(near) == len(others):
        return [
            head + " No other arm can be told apart from it on validation accuracy, so the study "
            "does not single out a best arm."
        ]
    if near:
        return [
            head + f" {len(near)} other arm{'s' if len(near) > 1 else ''} cannot be told apart from it "
            f"on validation accuracy (marked ≈ in the leaderboard); the other {len(others) - len(near)} "
            "fall significantly short of it."
        ]
    return [head + " Every other arm falls significantly short of it on validation accuracy."]


def correction_line(an: Analysis) -> str:
    """What was tested, how it was corrected, and how much survived."""
    fam = an.family
    if fam.adaptive and fam.claims:
        return adaptive_line(an)
    if not fam.claims:
        return "No claims: the study has a single arm with results, so there is nothing to compare."
    counts = _family_counts(fam.claims, an.baseline)
    test = (
        "Effects and interactions are t-tests in one block model per metric (arm + seed, residual "
        f"df {fam.df}), which assumes the arms vary about as much from seed to seed. "
        if fam.model == "block"
        else "Arm differences are paired t-tests over the seeds both arms completed. "
        if fam.model == "paired"
        else ""
    )
    head = (
        f"Correction: the {len(fam.claims)} claims these findings could make ({counts}) are "
        f"Holm-corrected together (family-wise error {ALPHA:.0%}). {test}"
    )
    if not fam.tested:
        return head + _untested(an)
    sig = len(fam.significant)
    if sig == 0:
        return head + (
            f"None of the {len(fam.tested)} tested survives: this study shows no difference "
            "beyond seed-to-seed noise, and these findings claim none."
        )
    return head + f"{sig} of the {len(fam.tested)} tested survive{'s' if sig == 1 else ''}."


def adaptive_line(an: Analysis) -> str:
    """How an adaptive study's verdicts were reached and what they guarantee."""
    fam = an.family
    counts = {k: sum(c.decision == k for c in fam.claims) for k in (DIFFERENT, EQUIVALENT, UNDECIDED, OPEN)}
    tally = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    rounds = ", ".join(map(str, fam.rounds))
    return (
        f"Adaptive seeds: seeds were added in rounds ({rounds} per arm) to the arms whose main effects were still "
        f"open, so the intervals here split the 5% error over the {len(fam.rounds)} planned looks and the "
        f"{len(fam.claims)} comparisons ({_family_counts(fam.claims, an.baseline)}): with probability at least "
        "95%, every interval covers its true difference at every look, so all these verdicts are right at once. "
        "Different: the interval excludes zero; equivalent: it lies within ±"
        f"{100 * fam.margin:g} points (the margin); undecided: neither, with no round left. {tally}."
    )


def _family_counts(family: Sequence[Claim], baseline: str | None) -> str:
    labels = {
        (MAIN, "test_accuracy"): "main effects on test accuracy",
        (MAIN, "gap"): "main effects on the gap",
        (INTERACTION, "test_accuracy"): "two-way interactions on test accuracy",
        (ARM, "test_accuracy"): f"comparisons with {baseline} on test accuracy",
        (ARM, "gap"): f"comparisons with {baseline} on the gap",
        (BEST, "val_accuracy"): "comparisons of the best arm with the others on validation "
        "accuracy, each Bonferroni-adjusted over all pairs of arms "
        "because the best was picked by the same data",
    }
    counts: dict[tuple[str, str], int] = {}
    for c in family:
        counts[(c.kind, c.metric)] = counts.get((c.kind, c.metric), 0) + 1
    return "; ".join(f"{n} {labels.get(k, k[0])}" for k, n in counts.items())


def _untested(an: Analysis) -> str:
    """Why nothing could be tested, in words that fit what was (not) computed."""
    estimates = [c.estimate for c in an.family.claims if math.isfinite(c.estimate)]
    if estimates and all(abs(e) < 1e-12 for e in estimates):
        return "Every arm gave the same results on every seed: there is no difference to test, and none is claimed."
    notes = list(dict.fromkeys(c.note for c in an.family.claims if c.note))
    return "None of them could be tested (" + "; ".join(notes[:2]) + "), so nothing is claimed."


def descriptive_lines(an: Analysis) -> list[str]:
    """fANOVA-style shares and the Pareto front, only once some difference among arms survived."""
    sig = an.family.significant
    if not any(c.kind != BEST for c in sig):
        return []
    out = []
    if an.shares:
        top, (share, lo, hi) = max(an.shares.items(), key=lambda kv: kv[1][0])
        if any(top in (c.subject, c.other) for c in sig if c.kind in (MAIN, INTERACTION)):
            out.append(
                f"Descriptive: {top} accounts for the largest share of the variance of the arms' mean "
                f"test accuracy, {share:.2f} (bootstrap 95% interval over seeds {lo:.2f} to {hi:.2f}; "
                "the shares sum to 1 by construction)."
            )
    front = [a for a in an.pareto if a in an.pareto_freq]
    if front:
        out.append(
            "Descriptive: the accuracy–gap Pareto front of the arm means is "
            + ", ".join(f"{a} (on the front in {an.pareto_freq[a]:.0%} of seed resamples)" for a in front)
            + "."
        )
    return out


def saturation_lines(an: Analysis) -> list[str]:
    """When training accuracy is 100%, the gap is the test error: say so, once."""
    board = an.board[an.board["n_complete"] > 0] if len(an.board) else an.board
    full = board[board["train_low"].fillna(board["train_mean"]) >= SATURATED] if len(board) else board
    if not len(full):
        return []
    which = "every arm" if len(full) == len(board) else f"{len(full)} of {len(board)} arms"
    return [
        f"Train accuracy is 100% in {which} (every seed): there the gap is just the test error "
        "(100% − test accuracy), so for those arms a change in the gap is the same change in test "
        "accuracy, not a separate effect on overfitting."
    ]


def uncertainty(an: Analysis) -> list[str]:
    """How precise the numbers are: test-set noise, what the intervals cover, power."""
    rec = an.record
    out = []
    if rec.test_size:
        p = float(an.board["test_mean"].dropna().iloc[0]) if an.board["test_mean"].notna().any() else 0.5
        se = math.sqrt(p * (1 - p) / rec.test_size)
        out.append(
            f"Test set: {rec.test_size} samples, so one sample is {100 / rec.test_size:.2f} points of "
            f"test accuracy; the binomial standard error of one run's test accuracy at {100 * p:.1f}% "
            f"is {100 * se:.2f} points."
        )
    else:
        out.append("The test-set size is not recorded for this study, so its sampling noise cannot be stated.")
    if rec.resplit:
        out.append(
            "Each seed draws its own train/validation/test split, so the intervals cover "
            "split-to-split variation as well as training noise."
        )
    else:
        out.append(
            f"Every seed uses the same data split (split seed {rec.split_seed}): the intervals cover "
            "training noise across seeds, not which samples happened to land in the test set."
        )
    if len(rec.devices) > 1:
        out.append(
            f"The runs used {len(rec.devices)} devices ({', '.join(rec.devices)}); results can differ "
            "slightly between devices."
        )
    return out + power_lines(an.table, an.baseline)
