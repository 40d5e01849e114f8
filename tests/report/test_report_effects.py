"""Main effects, interaction contrasts, fANOVA and the Pareto front on hand-computable designs."""

import math

import numpy as np
import pandas as pd
import pytest

from ablate.engine.store.record import StudyRecord
from ablate.report import effects
from ablate.report.analysis import analyse

# A 2x2 design (l2 x early stopping) where each change alone adds 2 points but both add only 3:
# they overlap by 1 point. Seed s shifts every arm by s/100 and adds a small per-seed wobble
# to the interaction so that its interval is finite.
CELLS = {("none", "none"): 0.90, ("l2", "none"): 0.92, ("none", "es"): 0.92, ("l2", "es"): 0.93}


def _table(seeds=4, wobble=0.002, failed=()):
    rows = []
    for (l2, es), acc in CELLS.items():
        arm = " + ".join(p for p in (l2, es) if p != "none") or "baseline"
        for s in range(seeds):
            extra = wobble * (s % 2) if (l2, es) == ("l2", "es") else 0.0
            ok = (arm, s) not in failed
            test = acc + s / 100 + extra
            rows.append(
                {
                    "arm": arm,
                    "seed": s,
                    "status": "complete" if ok else "failed",
                    "l2": l2,
                    "l2.weight": 1e-4 if l2 == "l2" else math.nan,
                    "early_stopping": es,
                    "test_accuracy": test if ok else math.nan,
                    "gap": (0.1 - test / 2) if ok else math.nan,
                }
            )
    return pd.DataFrame(rows)


META = {"factors": ["l2", "early_stopping"], "baseline": "baseline", "arms": ["baseline", "es", "l2", "l2 + es"]}
RECORD = StudyRecord(
    name="l2 x es", factors=("l2", "early_stopping"), baseline="baseline", arms=("baseline", "es", "l2", "l2 + es")
)


def test_levels_fold_subparameters_into_the_factor():
    levels = effects.factor_levels(_table(), META["factors"] + ["l2.weight"])
    assert list(levels.columns) == ["l2", "early_stopping"]  # "l2.weight" is not a factor of its own
    assert set(levels["l2"]) == {"none", "l2(weight=0.0001)"}


def test_main_effects_average_within_seed_then_across_seeds():
    table = _table(wobble=0.0)
    levels = effects.factor_levels(table, META["factors"])
    mains = effects.main_effects(table, levels, ["l2", "early_stopping"], "test_accuracy")
    none, l2 = mains["l2"]
    seed_mean = np.mean(range(4)) / 100
    assert none.level == "none" and none.n == 4
    assert none.mean == pytest.approx((0.90 + 0.92) / 2 + seed_mean)
    assert l2.mean == pytest.approx((0.92 + 0.93) / 2 + seed_mean)
    per_seed = [(0.92 + 0.93) / 2 + s / 100 for s in range(4)]
    from scipy import stats as st

    half = st.t.ppf(0.975, 3) * np.std(per_seed, ddof=1) / 2
    assert (l2.low, l2.high) == pytest.approx((l2.mean - half, l2.mean + half))


def test_interaction_contrast_finds_the_overlap():
    """Both changes help by 2 points alone and 3.1 together: two helps overlapping (redundancy),
    read from the effects, not from the sign of the contrast."""
    an = analyse(_table(), RECORD, descriptive=False)
    assert an.reference == {"l2": "none", "early_stopping": "none"}
    (it,) = an.interactions
    assert (it.level, it.other_level) == ("l2(weight=0.0001)", "es")
    assert it.alone_a == pytest.approx(0.02) and it.alone_b == pytest.approx(0.02)
    assert it.joint == pytest.approx(0.03 + 0.001)  # wobble averages to +0.1 point
    assert it.estimate == pytest.approx(-0.01 + 0.001)
    assert it.high < 0 and it.significant
    assert it.verdict == ("redundancy", "redundancy: helps overlap")
    from ablate.report.findings import interaction_sentence

    text = interaction_sentence(it)
    assert "alone +2.0 and +2.0 points, together +3.1, against +4.0 if they added up; interaction -0.9" in text


def test_interaction_without_variance_or_seeds_claims_nothing():
    an = analyse(_table(seeds=3, wobble=0.0), RECORD, descriptive=False)  # exactly additive on every seed
    (it,) = an.interactions
    assert it.estimate == pytest.approx(-0.01) and math.isnan(it.low)
    assert not it.tested and not it.significant and "no seed-to-seed variation" in it.note
    assert it.verdict[0] == "untested"
    # One seed where all four cells completed, and nothing left over to estimate noise from.
    an = analyse(_table(seeds=2, wobble=0.0, failed={("l2 + es", 1)}), RECORD, descriptive=False)
    (it,) = an.interactions
    assert not it.tested and not it.significant


def test_fanova_ranks_the_factor_that_matters():
    rng = np.random.default_rng(0)
    rows = []
    for a in ["a0", "a1", "a2"]:
        for b in ["b0", "b1"]:
            for s in range(4):
                rows.append(
                    {
                        "arm": f"{a}{b}",
                        "seed": s,
                        "status": "complete",
                        "big": a,
                        "small": b,
                        "test_accuracy": 0.8 + 0.05 * int(a[1]) + 0.002 * int(b[1]) + rng.normal(0, 0.001),
                    }
                )
    table = pd.DataFrame(rows)
    levels = effects.factor_levels(table, ["big", "small"])
    imp, note = effects.fanova(table, levels, ["big", "small"])
    assert note == "" and set(imp) == {"big", "small"}
    assert imp["big"] > 0.8 > imp["small"]
    assert effects.fanova(table, levels, ["big"]) == (
        {},
        pytest.approx("fANOVA needs at least two factors with more than one level; this study has 1."),
    )
    few = table.iloc[:5]
    assert "at least 8 completed runs" in effects.fanova(few, levels.iloc[:5], ["big", "small"])[1]


def test_pareto_front_keeps_only_undominated_arms():
    board = pd.DataFrame(
        {
            "arm": ["acc", "gap", "both_worse", "tie_acc", "nan"],
            "test_mean": [0.95, 0.90, 0.89, 0.95, math.nan],
            "gap_mean": [0.05, 0.01, 0.05, 0.06, 0.0],
        }
    )
    assert effects.pareto_front(board) == ["acc", "gap"]  # tie_acc: same accuracy, larger gap


def test_analyse_without_baseline_skips_comparisons_with_a_note():
    an = analyse(_table(), RECORD.replace(baseline=None))
    assert an.comparisons == {} and "no baseline" in an.baseline_note
    assert an.varied == ["l2", "early_stopping"] and len(an.interactions) == 1
    an = analyse(_table(), RECORD)
    assert set(an.comparisons) == {"test_accuracy", "gap"}
    assert set(an.shares) == {"l2", "early_stopping"}  # a crossed grid: exact shares with intervals
    assert all(lo <= share <= hi for share, lo, hi in an.shares.values())
