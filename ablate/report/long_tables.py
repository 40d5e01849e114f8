"""The page's per-arm tables cut to the arms it names, past MANY_ARMS arms.

A study of hundreds of arms would put hundreds of rows in each of the leaderboard, the
settings, the tests and the against-baseline tables (a megabyte of page no one reads).
Past MANY_ARMS arms they keep the rows of the arms shown by name (shown.py: the best on
validation and the baseline), each says how many rows it leaves out and how many of those
are significant, and every arm stays in a folded compact leaderboard, in results.csv and
in leaderboard.md. Up to MANY_ARMS arms nothing changes.
"""

from __future__ import annotations

from typing import Any

from ablate.report.analysis import Analysis
from ablate.report.claims import BEST
from ablate.report.figure_limits import TOP_ARMS
from ablate.report.paired import sentence
from ablate.report.shown import MAX_RUN_ROWS, named_arms


def fold(an: Analysis, context: dict[str, Any]) -> dict[str, Any]:
    """The page's context with its long tables cut (and what was cut said); rows ranked."""
    for rank, row in enumerate(context["rows"], start=1):
        row["rank"] = rank
    named = named_arms(an.board, an.baseline)
    context.update(all_arms=[], arms_cut=0, arms_note="", settings_cut=0, claims_cut="")
    context.update(failures_cut=_cut_runs(context, "failures"), search_cut=_cut_runs(context, "search_runs"))
    for block in context["comparisons"]:
        block["cut"] = ""
    if len(named) == len(context["rows"]):
        return context
    keep = set(named)
    context["all_arms"] = [
        {k: row[k] for k in ("rank", "arm", "is_baseline", "near_best", "n", "val", "test", "gap")}
        for row in context["rows"]
    ]
    context["rows"] = [row for row in context["rows"] if row["arm"] in keep]
    context["arms_cut"] = len(context["all_arms"]) - len(context["rows"])
    top = sum(1 for row in context["rows"] if row["rank"] <= TOP_ARMS)
    context["arms_note"] = (
        f"Showing the {top} best of {len(context['all_arms'])} arms by mean validation accuracy"
        + (" and the baseline" if len(context["rows"]) > top else "")
        + f"; the other {context['arms_cut']} are in the table below (folded), in results.csv "
        "(one row per run) and in leaderboard.md."
    )
    settings = context["arm_settings"]
    context["arm_settings"] = [a for a in settings if a["arm"] in keep]
    context["settings_cut"] = len(settings) - len(context["arm_settings"])
    pairs = list(zip(an.family.claims, context["claims"]))
    context["claims"] = [row for c, row in pairs if c.kind != BEST or c.subject in keep]
    left = [c for c, _ in pairs if c.kind == BEST and c.subject not in keep]
    if left:
        sig = sum(c.significant for c in left)
        context["claims_cut"] = (
            f"{len(left)} more comparisons of the best arm with the arms not named above are left out here: "
            f"{sig} significant, {len(left) - sig} not."
        )
    for block in context["comparisons"]:
        comps = an.comparisons[block["metric"]]
        block["rows"] = [r for r in block["rows"] if r["arm"] in keep]
        block["sentences"] = [sentence(c) for c in comps if c.significant and c.arm in keep]
        out = [c for c in comps if c.arm not in keep]
        untested = tuple(f"{c.arm}: " for c in out if not c.tested)
        block["others"] = [line for line in block["others"] if not line.startswith(untested)]
        if out:
            sig = sum(c.significant for c in out)
            block["cut"] = (
                f"{len(out)} arms not named above are left out of this table: {sig} differ significantly "
                f"from the baseline, {len(out) - sig} do not (or cannot be tested)."
            )
    return context


def _cut_runs(context: dict[str, Any], key: str) -> int:
    """Keep the first MAX_RUN_ROWS rows of a per-run table; the number left out."""
    rows = context[key]
    context[key] = rows[:MAX_RUN_ROWS]
    return max(0, len(rows) - MAX_RUN_ROWS)
