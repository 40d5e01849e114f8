"""Every number the report shows, computed once from the results table, so the
HTML page, the figures and the Markdown/LaTeX exports cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import pandas as pd

from ablate.engine.store.record import StudyRecord
from ablate.report.adaptive import adaptive_family, setup_of
from ablate.report.bootstrap import pareto_frequency, share_intervals
from ablate.report.claims import BEST, INTERACTION, Claim, Family, arm_levels, family
from ablate.report.effects import (
    LevelStat,
    factor_levels,
    fanova,
    main_effects,
    pareto_front,
    reference_levels,
    varied_factors,
)
from ablate.report.paired import PAIRED_METRICS, Comparison, against_baseline
from ablate.report.stats import factor_columns, leaderboard


@dataclass
class Analysis:
    record: StudyRecord
    table: pd.DataFrame
    board: pd.DataFrame  # one row per arm, best mean validation accuracy first
    columns: list[str]  # factor columns of the leaderboard, sub-parameters included
    baseline: str | None
    baseline_note: str
    comparisons: dict[str, list[Comparison]]
    levels: pd.DataFrame
    varied: list[str]
    reference: dict[str, str]
    main_effects: dict[str, dict[str, list[LevelStat]]]
    family: Family
    best: str | None  # highest mean validation accuracy (never chosen on test)
    fanova: dict[str, float] = field(default_factory=dict)
    fanova_note: str = ""
    shares: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    pareto: list[str] = field(default_factory=list)
    pareto_freq: dict[str, float] = field(default_factory=dict)

    @property
    def interactions(self) -> list[Claim]:
        return [c for c in self.family.claims if c.kind == INTERACTION]

    @cached_property
    def near_best(self) -> set[str]:
        """Arms the data cannot tell apart from the best on validation accuracy (asked once per
        row of every table: computed once)."""
        return {c.subject for c in self.family.claims if c.kind == BEST and not c.significant}


def analyse(table: pd.DataFrame, record: StudyRecord, descriptive: bool = True) -> Analysis:
    """All statistics. ``descriptive=False`` computes only what the Findings need (the leaderboard
    and the claims), skipping the tables and summaries that claim nothing (against-baseline
    rows, level means, fANOVA, bootstraps), so Findings take milliseconds, e.g. over many
    simulated studies."""
    factors = list(record.factors)
    board = leaderboard(table, record.arms, factors)
    arms = [str(a) for a in board.get("arm", [])]
    baseline, note = _baseline(record.baseline, arms)
    levels = factor_levels(table, factors) if len(table) else pd.DataFrame()
    varied = varied_factors(levels)
    ref = {str(k): str(v) for k, v in reference_levels(levels, table, baseline).items()}
    best = _best(board)
    setup = setup_of(record.design, record.seeds)
    if setup is None:
        fam = family(table, levels, varied, ref, baseline, arms, best)
    else:  # seeds added while comparisons were open: intervals valid under that stopping rule
        fam = adaptive_family(table, levels, varied, ref, baseline, arms, setup)
    an = Analysis(
        record, table, board, factor_columns(table, factors), baseline, note, {}, levels, varied, ref, {}, fam, best
    )
    if descriptive:
        _describe(an)
    return an


def _describe(an: Analysis) -> None:
    """Against-baseline rows, level means, fANOVA, variance shares and the Pareto front (with a
    bootstrap over seeds): everything shown that the Findings do not claim from."""
    if an.baseline and an.family.adaptive:  # fixed-sample tests would ignore the stopping rule
        an.baseline_note = (
            "In an adaptive study each arm's difference from the baseline is read with intervals valid under "
            "its stopping rule (the figure on top and Tests behind the findings); per-pair tests that ignore "
            "it are not shown."
        )
    elif an.baseline:
        arms = [str(a) for a in an.board["arm"]]
        an.comparisons = {m: against_baseline(an.table, an.baseline, arms, m) for m in PAIRED_METRICS}
    an.main_effects = {m: main_effects(an.table, an.levels, an.varied, m) for m in ("test_accuracy", "gap")}
    done = [a for a, n in zip(an.board.get("arm", []), an.board.get("n_complete", [])) if n > 0]
    if not done:  # every run failed: no mean to decompose
        an.fanova_note = "no run completed: nothing to decompose."
    elif an.family.crossed and len(an.varied) >= 2:  # a complete grid: the exact decomposition
        lv = arm_levels(an.table, an.levels, an.varied)
        an.shares = share_intervals(an.table, done, [lv[a] for a in done], an.varied)
    else:  # elsewhere Optuna's forest estimates it (no interval: a forest per resample is too slow)
        an.fanova, an.fanova_note = (
            fanova(an.table, an.levels, an.varied)
            if an.varied
            else ({}, "fANOVA needs at least two factors with more than one level; this study has none.")
        )
    an.pareto = pareto_front(an.board)
    an.pareto_freq = pareto_frequency(an.table, done)


def _best(board: pd.DataFrame) -> str | None:
    ok = board[board["val_mean"].notna()] if len(board) else board
    return str(ok["arm"].iloc[0]) if len(ok) else None


def _baseline(base: str | None, arms: list[str]) -> tuple[str | None, str]:
    if not base:
        return None, (
            "This study has no baseline arm (no all-off arm and no study.baseline), so arms are not compared pairwise."
        )
    if str(base) not in arms:
        return None, f"The baseline arm {base} has no runs in the table, so arms are not compared pairwise."
    return str(base), ""
