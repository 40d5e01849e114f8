"""Adaptive seeds over simulated studies: error rates, power and runs against fixed designs.

Three scenarios on a 2 x 2 x 2 factorial (tests/report/adaptive_sim.py), seeds = {min = 3,
max = 12}, each over STUDIES simulated studies (default 2000; pass another number):

1. no effect at all, margin 0.5 SD (small, so most studies look three times): the share of
   studies with any false "different" verdict, with its 95% Clopper-Pearson interval;
2. no effect at all, margin 2 SD: the share of studies whose every main effect is "equivalent";
3. one main effect of twice the margin (margin 2 SD, effect 4 SD): "different" for it, every
   main effect decided, the runs, against fixed designs on the same simulated runs: the same
   intervals with one look at n seeds, and today's fixed-seed Findings (Holm, no margin). The
   fixed design with the same power is the one that decides every main effect as often (the
   adaptive rule's goal); one aimed only at detecting the planted effect needs far fewer seeds,
   and never says whether the other effects are within the margin.

Run: .venv/bin/python benchmarks/adaptive_seeds.py [STUDIES]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "report"))
from adaptive_sim import SD, adaptive, fixed, fixed_findings_hit, full_study, planted, rate

ARMS = 8


def pct(hits: int, total: int) -> str:
    share, low, high = rate(hits, total)
    return f"{share:.1%} (95% CI {low:.1%} to {high:.1%}, {hits} of {total})"


def main(studies: int) -> None:
    start = time.perf_counter()
    rng = np.random.default_rng(20261206)
    false_diff = 0
    for _ in range(studies):
        table, record = full_study(rng, 12, None)
        false_diff += adaptive(table, record, 3, 12, 0.5 * SD * 100).any_false_different
    print(f"1. null, margin 0.5 SD: studies with any false 'different': {pct(false_diff, studies)}")

    equivalent = runs_eq = 0
    for _ in range(studies):
        table, record = full_study(rng, 12, None)
        out = adaptive(table, record, 3, 12, 2 * SD * 100)
        equivalent += all(v == "equivalent" for v in out.verdicts.values())
        runs_eq += out.runs
    print(
        f"2. null, margin 2 SD: every main effect 'equivalent' in {pct(equivalent, studies)}; "
        f"mean runs {runs_eq / studies:.1f} of {ARMS * 12}"
    )

    effect, truth = planted(4.0)
    hit = decided = runs = false_diff = 0
    fixed_decided = {n: 0 for n in (3, 6, 7, 8, 9, 10, 12)}
    fixed_hit = {n: 0 for n in (2, 3, 6, 7, 8, 9, 10, 12)}
    holm_hit = {n: 0 for n in (2, 3)}
    for _ in range(studies):
        table, record = full_study(rng, 12, effect)
        out = adaptive(table, record, 3, 12, 2 * SD * 100, truth)
        hit += out.verdicts[("a", "a1", "test_accuracy")] == "different"
        decided += out.all_decided
        runs += out.runs
        false_diff += out.any_false_different
        for n in fixed_hit:
            one = fixed(table, record, n, 2 * SD * 100, truth)
            fixed_hit[n] += one.verdicts[("a", "a1", "test_accuracy")] == "different"
            if n in fixed_decided:
                fixed_decided[n] += one.all_decided
        for n in holm_hit:
            holm_hit[n] += fixed_findings_hit(table, record, n)
    mean_runs = runs / studies
    print(
        f"3. one effect of 4 SD (twice the margin of 2 SD): 'different' for it in {pct(hit, studies)}; "
        f"every main effect decided in {pct(decided, studies)}; any false 'different' in {pct(false_diff, studies)}; "
        f"mean runs {mean_runs:.1f} (of {ARMS * 12} at most)"
    )
    print(f"   fixed design, 2 seeds ({ARMS * 2} runs): 'different' for the effect in {pct(fixed_hit[2], studies)}")
    for n, k in fixed_decided.items():
        print(
            f"   fixed design, {n} seeds ({ARMS * n} runs), same intervals with one look: every main effect "
            f"decided in {pct(k, studies)}; 'different' for the effect in {pct(fixed_hit[n], studies)}"
        )
    for n, k in holm_hit.items():
        print(
            f"   today's fixed-seed Findings (Holm), {n} seeds ({ARMS * n} runs): "
            f"effect significant in {pct(k, studies)}"
        )
    same = next((n for n in fixed_decided if fixed_decided[n] >= decided), None)
    if same is not None:
        print(
            f"   the fixed design that decides every main effect as often needs {same} seeds ({ARMS * same} runs): "
            f"adaptive uses {1 - mean_runs / (ARMS * same):.0%} fewer runs on average"
        )
    print(f"({time.perf_counter() - start:.0f} s on a shared machine)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
