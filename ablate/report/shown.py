"""Which arms a report names one by one: all of them up to MANY_ARMS, else the TOP_ARMS
best on validation accuracy and the baseline. Shared by the figures and the page, so both
show the same arms; matplotlib-free."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ablate.report.figure_limits import MANY_ARMS, TOP_ARMS

MAX_RUN_ROWS = 50  # failed runs and search runs listed on the page and in summary.md; all are in results.csv


def named_arms(board: pd.DataFrame, baseline: str | None) -> list[str]:
    """Arms in leaderboard order: every arm, or past MANY_ARMS the TOP_ARMS best and the baseline."""
    arms = [str(a) for a in board.get("arm", [])]
    return top_and_baseline(arms, baseline) if len(arms) > MANY_ARMS else arms


def top_and_baseline(arms: Sequence[str], baseline: str | None, top: int = TOP_ARMS) -> list[str]:
    """The first ``top`` arms, and the baseline after them when it is not among them."""
    out = list(arms[:top])
    if baseline is not None and baseline in arms and baseline not in out:
        out.append(baseline)
    return out
