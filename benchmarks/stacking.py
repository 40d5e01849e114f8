"""The runs phase of a study, stacked against unstacked, in one invocation.

    .venv/bin/python benchmarks/stacking.py [--study studies/quickstart.toml] [--repeat 3]
                                            [--device cpu|cuda] [--threads 1] [--generic]
                                            [--grid [lr_wd|recipe]] [--precision fp32|bf16]

Trains every run of the study's design (the quickstart: 12 arms x 3 seeds, 40
epochs, early stopping in half the arms) twice per repeat, in the same process
and in alternating order: each run alone with ``train_run``, and stacked as the
engine stacks them (``group_runs``: an arm's seeds, with the seeds of arms that
differ only in stopping rules or dropout, as one model trained by ``train_group``). No
Optuna, storage or report: only the training the engine would do. ``--generic`` adds a third pass through
the generic torch.func path (every layer under vmap) to compare the two stacked
forms. Prints wall and CPU seconds per pass, the median over repeats, runs per
second, and checks the stacked results against the unstacked ones. ``--grid`` runs
benchmarks/lr_wd_grid.toml instead (a learning-rate x weight-decay grid under Adam),
``--grid recipe`` benchmarks/recipe_grid.toml (label smoothing x L2 coefficient under
SGD with a cosine schedule): arms that differ only in values a stack holds per seat
share one stack, and a third pass stacks each arm apart (as before they could share);
``--precision`` overrides [train] precision.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ablate.engine.planned import study_arms
from ablate.plugin.manager import build_registry, make_plugin_manager
from ablate.plugin.registry import Registry
from ablate.spec import Execution, RunSpec
from ablate.study.config import load_study
from ablate.study.design import run_spec
from ablate.study.study_file import plugin_files_of
from ablate.train.build import load_data
from ablate.train.stacked.grouping import group_runs
from ablate.train.stacked.training import train_group
from ablate.train.training import RunResult, train_run

Pass = Callable[[], list[RunResult]]
GRIDS = {"lr_wd": "lr_wd_grid.toml", "recipe": "recipe_grid.toml"}


def study_groups(path: str, registry: Registry) -> list[list[RunSpec]]:
    """Every arm's runs (one per seed), in design order."""
    config = load_study(path, registry)
    return [[run_spec(config, arm, seed) for seed in config.seeds] for arm in study_arms(config, registry)]


def with_precision(spec: RunSpec, precision: str) -> RunSpec:
    train = {k: v for k, v in spec.train.items() if k != "precision"}
    return dataclasses.replace(spec, train=train if precision == "fp32" else {**train, "precision": precision})


def unstacked(groups: list[list[RunSpec]], registry: Registry, execution: Execution) -> list[RunResult]:
    return [train_run(spec, registry, execution) for group in groups for spec in group]


def stacked(
    groups: list[list[RunSpec]], registry: Registry, execution: Execution, generic: bool = False
) -> list[RunResult]:
    """As the engine trains them at ``--jobs 1``: grouped by ``group_runs`` (an arm's
    seeds, with the arms that differ from it only in stopping rules or dropout),
    results in design order."""
    specs = [spec for group in groups for spec in group]
    by_key: dict[str, RunResult] = {}
    for unit in group_runs(specs, registry, execution):
        for spec, result in zip(unit, train_group(unit, registry, execution, generic=generic), strict=True):
            if isinstance(result, BaseException):
                raise SystemExit(f"a stacked run failed: {result!r}")
            by_key[spec.key] = result
    return [by_key[spec.key] for spec in specs]


def per_arm(groups: list[list[RunSpec]], registry: Registry, execution: Execution) -> list[RunResult]:
    """Each arm's seeds as a stack of their own (how a grid trained before its arms
    could share a stack), results in design order."""
    out: list[RunResult] = []
    for group in groups:
        for result in train_group(group, registry, execution):
            if isinstance(result, BaseException):
                raise SystemExit(f"a stacked run failed: {result!r}")
            out.append(result)
    return out


def timed(run: Pass, device: torch.device) -> tuple[float, float, list[RunResult]]:
    """(wall seconds, CPU seconds, results) of one pass."""
    wall, cpu = time.perf_counter(), time.process_time()
    results = run()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - wall, time.process_time() - cpu, results


def agreement(a: list[RunResult], b: list[RunResult]) -> str:
    """How two passes' test accuracies compare: runs with random layers (dropout)
    draw differently when stacked, so they agree in distribution, not per run."""
    same = sum(x.metrics["test_accuracy"] == y.metrics["test_accuracy"] for x, y in zip(a, b, strict=True))
    mean = [statistics.mean(r.metrics["test_accuracy"] for r in rs) for rs in (a, b)]
    together = sum(r.stack > 1 for r in b)  # a stack that failed to build trains its runs alone, silently
    return (
        f"{together} of {len(b)} runs trained in a stack; test accuracy identical in {same} of {len(a)} runs; "
        f"mean test accuracy {mean[0]:.4f} unstacked, {mean[1]:.4f} here"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", default="studies/quickstart.toml")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--generic", action="store_true", help="also time the generic torch.func path")
    parser.add_argument(
        "--grid", nargs="?", const="lr_wd", choices=tuple(GRIDS), help="a grid of per-seat values (GRIDS)"
    )
    parser.add_argument("--precision", default=None, choices=("fp32", "bf16"))
    args = parser.parse_args()
    if args.grid:
        args.study = str(Path(__file__).with_name(GRIDS[args.grid]))
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available here")
    registry = build_registry(make_plugin_manager(plugin_files_of(args.study)))
    execution = Execution(args.device, args.threads)
    groups = study_groups(args.study, registry)
    if args.precision is not None:
        groups = [[with_precision(s, args.precision) for s in g] for g in groups]
    device = torch.device(args.device)
    load_data(groups[0][0], registry, device)  # both passes share the cached data
    passes: dict[str, Pass] = {
        "unstacked": lambda: unstacked(groups, registry, execution),
        "stacked": lambda: stacked(groups, registry, execution),
    }
    if args.grid:
        passes["stacked, each arm apart"] = lambda: per_arm(groups, registry, execution)
    if args.generic:
        passes["stacked, generic torch.func"] = lambda: stacked(groups, registry, execution, generic=True)
    report(passes, args, device, sum(len(g) for g in groups), len(groups))


def report(passes: dict[str, Pass], args: argparse.Namespace, device: torch.device, runs: int, arms: int) -> None:
    walls: dict[str, list[float]] = {name: [] for name in passes}
    print(
        f"{Path(args.study).name}: {arms} arms, {runs} runs, device {device.type}, "
        f"{args.threads} thread(s), {args.repeat} repeat(s)"
    )
    for r in range(args.repeat):
        order = list(passes) if r % 2 == 0 else list(passes)[::-1]
        results = {}
        for name in order:
            wall, cpu, results[name] = timed(passes[name], device)
            walls[name].append(wall)
            print(f"  repeat {r + 1}: {name:28s} {wall:6.2f} s wall, {cpu:6.2f} s CPU, {runs / wall:6.2f} runs/s")
        for name in passes:
            if name != "unstacked":
                print(f"    {name}: {agreement(results['unstacked'], results[name])}")
    base = statistics.median(walls["unstacked"])
    for name, values in walls.items():
        median = statistics.median(values)
        print(
            f"median {name:28s} {median:6.2f} s  ({runs / median:6.2f} runs/s)  "
            f"speed-up over unstacked {base / median:4.2f}x"
        )


if __name__ == "__main__":
    main()
