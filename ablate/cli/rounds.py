"""Adaptive seeds: which runs the next round trains, decided from stored results only.

Round 1 trains the first ``min`` seeds of every arm. After each round the study's
stored results are analysed as the report analyses them (ablate/report/adaptive.py)
and the next ``min`` seeds go only to the arms of comparisons still open, until
none is open or ``max`` is reached. Nothing here depends on timing, on which
process asks or on what it trained itself: a resumed study, and every worker on a
shared storage, reach the same rounds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import optuna

from ablate.engine.planned import PlannedRun, plan_runs, record_entries
from ablate.engine.store.record import StudyRecord
from ablate.engine.store.record import seed_rounds as rounds
from ablate.study.config import StudyConfig
from ablate.study.design import Arm

Log = Callable[[str], None]


def round_planner(
    config: StudyConfig,
    adaptive: tuple[int, int],
    study: optuna.Study,
    arms: Sequence[Arm],
    record: Callable[[], StudyRecord],
    save: Callable[[list[PlannedRun]], None],
    log: Log,
) -> Callable[[list[PlannedRun]], list[PlannedRun]]:
    """The runner's ``next_round``: given every run so far (all stored), the next round's runs.
    ``adaptive``: the study's (min, max) seeds; ``record``: the study's record now; ``save``:
    stores the plan before a round trains."""
    schedule = rounds(*adaptive)

    def next_round(planned: list[PlannedRun]) -> list[PlannedRun]:
        if not planned:
            new = plan_runs(config, list(arms), seeds=config.seeds[: schedule[0]])
            log(f"round 1 of at most {len(schedule)}: {schedule[0]} seeds of each of {len(arms)} arms")
            save(new)
            return new
        reached = max(config.seeds.index(r.seed) for r in planned) + 1
        later = [n for n in schedule if n > reached]
        if not later:
            return []
        from ablate.engine.store.results import collect  # pandas: only once a round is done
        from ablate.report.analysis import analyse  # scipy and pandas: likewise

        rec = record()
        table, _ = collect(study, record_entries(planned), rec.factors)
        family = analyse(table, rec, descriptive=False).family
        open_arms = set(family.open_arms)
        if not open_arms:
            log(f"every comparison is decided with {reached} seeds per arm: no more rounds")
            return []
        chosen = [a for a in arms if a.name in open_arms]
        new = plan_runs(config, chosen, seeds=config.seeds[reached : later[0]])
        log(
            f"round {schedule.index(later[0]) + 1} of at most {len(schedule)}: seeds {reached} to {later[0] - 1} "
            f"for the {len(chosen)} of {len(arms)} arms whose comparisons are open"
        )
        save(planned + new)
        return new

    return next_round


def adaptive_design(config: StudyConfig) -> dict[str, object]:
    """What the study record keeps of adaptive seeds (nothing for fixed seeds)."""
    if config.adaptive is None:
        return {}
    low, high = config.adaptive
    return {"seeds": {"min": low, "max": high}, "margin": config.margin}


def runs_range(adaptive: tuple[int, int], arms: Sequence[object]) -> tuple[int, int]:
    """(least, most) runs: every arm's min seeds, or every arm's max."""
    return len(arms) * adaptive[0], len(arms) * adaptive[1]


def describe_rounds(adaptive: tuple[int, int]) -> str:
    return ", ".join(str(n) for n in rounds(*adaptive))


__all__: Sequence[str] = ("adaptive_design", "describe_rounds", "round_planner", "runs_range")
