"""Every number the report shows, computed once from the results table, so the
HTML page, the figures and the Markdown/LaTeX exports cannot disagree."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from ablate.report import effects, paired, stats


@dataclass
class Analysis:
    meta: dict
    table: pd.DataFrame
    board: pd.DataFrame
    columns: list[str]  # factor columns of the leaderboard, sub-parameters included
    baseline: str | None
    baseline_note: str
    comparisons: dict[str, list[paired.Comparison]]
    levels: pd.DataFrame
    varied: list[str]
    reference: dict
    main_effects: dict[str, dict[str, list[effects.LevelStat]]]
    interactions: list[effects.Interaction]
    fanova: dict[str, float]
    fanova_note: str
    pareto: list[str]


def analyse(table: pd.DataFrame, meta: Mapping) -> Analysis:
    meta = dict(meta or {})
    board = stats.leaderboard(table, meta)
    arms = [str(a) for a in board.get("arm", [])]
    baseline, note = _baseline(meta, arms)
    comparisons = {m: paired.against_baseline(table, baseline, arms, m) for m in paired.METRICS} \
        if baseline else {}
    levels = effects.factor_levels(table, meta.get("factors") or []) if len(table) else pd.DataFrame()
    varied = effects.varied_factors(levels)
    ref = effects.reference_levels(levels, table, baseline)
    mains = {m: effects.main_effects(table, levels, varied, m) for m in ("test_accuracy", "gap")}
    inter = effects.interactions(table, levels, varied, ref, "test_accuracy")
    imp, imp_note = effects.fanova(table, levels, varied) if varied else (
        {}, "fANOVA needs at least two factors with more than one level; this study has none.")
    return Analysis(meta, table, board, stats.factor_columns(table, meta.get("factors") or []),
                    baseline, note, comparisons, levels, varied, ref, mains, inter, imp, imp_note,
                    effects.pareto_front(board))


def _baseline(meta: Mapping, arms: list[str]) -> tuple[str | None, str]:
    base = meta.get("baseline")
    if not base:
        return None, ("This study has no baseline arm (no all-off arm and no study.baseline), "
                      "so arms are not compared pairwise.")
    if str(base) not in arms:
        return None, f"The baseline arm {base} has no runs in the table, so arms are not compared pairwise."
    return str(base), ""
