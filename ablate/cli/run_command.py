"""`ablate run` and `ablate plan`: load a study, train what is missing, store
the study's record and write its report."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

from ablate import __version__
from ablate.cli.prefetch import REPORT, STORAGE, prefetch
from ablate.cli.rounds import adaptive_design, describe_rounds, round_planner, runs_range
from ablate.engine.environment import probe
from ablate.engine.estimate import STARTUP_SECONDS, describe, duration, estimate_seconds, run_count
from ablate.engine.planned import plan_runs, record_entries, study_arms
from ablate.engine.pool import resolve_jobs
from ablate.engine.preflight import check_study, data_specs
from ablate.engine.runner import RunOptions, make_executor, run_study
from ablate.engine.store import attrs
from ablate.engine.store.db_patience import DEFAULT_PATIENCE, cannot_write_folder, configure
from ablate.engine.store.record import StudyRecord
from ablate.engine.store.storage import default_storage, open_storage, open_study
from ablate.engine.store.storage_url import for_people, from_env, sqlite_url, without_password
from ablate.errors import UserError
from ablate.plugin.registry import Registry
from ablate.spec import COMPILE_ALONE
from ablate.study.config import StudyConfig, load_study
from ablate.study.design import Arm, baseline_arm, run_spec
from ablate.study.study_file import study_registry
from ablate.train.stacked.units import stack_key

if TYPE_CHECKING:
    from ablate.engine.coordinator import Executor
    from ablate.engine.environment import Environment
    from ablate.engine.pool import ProcessPool
    from ablate.spec import RunSpec

EXIT_FAILED_RUNS = 3


def load(study_path: Path) -> tuple[StudyConfig, Registry]:
    """The validated study and the registry of every component it may name."""
    registry = study_registry(study_path)
    return load_study(study_path, registry), registry


def versions(env: Environment) -> dict[str, str]:
    return {
        "ablate": __version__,
        "python": platform.python_version(),
        "torch": env.torch,
        "optuna": optuna.__version__,
    }


def arm_definitions(config: StudyConfig, arms: Sequence[Arm]) -> dict[str, dict[str, Any]]:
    """Per arm, every value that defines it: factor levels, the active components'
    parameters (constant ones included) and the settings factors set."""
    out: dict[str, dict[str, Any]] = {}
    for arm in arms:
        values: dict[str, Any] = {}
        by_level = {c.name: c for c in arm.components}
        for f in config.factors:
            level = arm.values.get(f.name)
            values[f.name] = level
            comp = by_level.get(str(level)) if f.kind else None
            if comp is not None:
                values.update({f"{f.name}.{p}": v for p, v in comp.params.items()})
        out[arm.name] = values
    return out


def _stored_results(study: optuna.Study) -> list[dict[str, Any]]:
    return [t.user_attrs[attrs.RESULT] for t in study.get_trials(deepcopy=False) if attrs.RESULT in t.user_attrs]


def study_record(
    config: StudyConfig,
    study: optuna.Study,
    arms: Sequence[Arm],
    baseline: str | None,
    storage: str,
    last_command: dict[str, Any],
    env: Environment,
) -> StudyRecord:
    """The study's record from its config, its arms and what its storage holds."""
    old = StudyRecord.from_json(study.user_attrs.get(attrs.RECORD, {}))
    results = _stored_results(study)
    sizes: dict[str, int] = next((r["sizes"] for r in results if r.get("sizes")), {})
    fixed = {
        k: v
        for k, v in config.train.items()
        if k not in {f.setting.split(".", 1)[1] for f in config.factors if f.setting and f.setting.startswith("train.")}
    }
    return StudyRecord(
        name=config.name,
        question=config.question,
        study_file=str(config.path),
        design={
            **{
                k: getattr(config.design, k)
                for k in ("kind", "budget", "sampler", "confirm_top", "pruner", "search_seed")
            },
            **adaptive_design(config),
        },
        dataset=config.data.name,
        data_params=dict(config.data.params),
        split_seed=config.split_seed,
        resplit=config.resplit,
        model=config.model.name,
        model_params=dict(config.model.params),
        train=fixed,
        seeds=tuple(config.seeds),
        arms=tuple(a.name for a in arms),
        arm_keys={a.name: a.key for a in arms},
        arm_settings=arm_definitions(config, arms),
        baseline=baseline,
        factors=tuple(_factor_names(arms)),
        runs_total=0,
        test_size=sizes.get("test"),
        devices=tuple(sorted({str(r.get("device")) for r in results if r.get("device")})),
        versions=versions(env),
        started=old.started or last_command.get("started", ""),
        training_seconds=round(sum(float(r.get("seconds") or 0.0) for r in results), 2),
        last_command=last_command,
        storage=storage,
        optuna_study=study.study_name,
    )


def _factor_names(arms: Sequence[Arm]) -> list[str]:
    from ablate.engine.store.results import value_columns  # pandas: only when this runs, not at start-up

    return value_columns([a.values for a in arms])


def save_record(study: optuna.Study, record: StudyRecord, planned: Sequence[Any]) -> None:
    """Store the record and the plan with the study (a report needs nothing else)."""

    study.set_user_attr(attrs.RECORD, record.replace(runs_total=len(planned)).to_json())
    study.set_user_attr(attrs.PLAN, [e.to_json() for e in record_entries(planned)])


def output_dir(given: Path | None, config: StudyConfig) -> Path:
    """The output folder, created and checked writable before any training."""
    out = given if given is not None else Path("reports") / config.name
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".ablate-write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UserError(
            f"cannot write the output folder {out}: {exc.strerror or exc}",
            key="--out",
            expected="a folder you can write (or --out ANOTHER_FOLDER)",
        ) from None
    return out


def check_environment(config: StudyConfig, registry: Registry, arms: list[Arm], env: Environment) -> None:
    """Before training: CUDA asked for without a usable GPU, or a component that
    rejects the data, is a user error."""
    if config.train["device"] == "cuda" and not env.cuda:
        raise UserError(
            'device = "cuda" but no usable CUDA GPU is visible to torch',
            key="train.device",
            where=str(config.path),
            expected='"auto" (CUDA when present, else the CPU) or "cpu"',
        )
    check_study(config, registry, arms, env.data)


def study_environment(
    config: StudyConfig,
    registry: Registry,
    arms: list[Arm],
    ask: Callable[[list[RunSpec], str], Environment],
) -> Environment:
    """What the runs will see (``ask``: the executor's or this process's probe), each
    data setting loaded, split and checked before anything trains. A data set that
    cannot load or split with the study's settings, or a component that rejects
    it, is a user error; it names the study file, where the keys it names live."""
    try:
        env = ask(data_specs(config, arms), config.train["device"])
        check_environment(config, registry, arms, env)
    except UserError as err:
        err.located(str(config.path))
        raise
    return env


def run_options(args: argparse.Namespace, config: StudyConfig) -> RunOptions:

    return RunOptions(
        jobs=resolve_jobs(getattr(args, "jobs", 1)),
        retry_failed=getattr(args, "retry_failed", False),
        retrain_changed=getattr(args, "retrain_changed", False),
        plugin_files=list(config.plugin_files),
    )


def execute(args: argparse.Namespace, report: bool, pool: ProcessPool | None = None) -> int:
    """Train what is missing (``ablate run`` and ``ablate worker``); write the report if asked.
    ``pool``: worker processes the command line started before its imports."""

    try:
        config, registry = load(args.study)
        options = run_options(args, config)
        executor = make_executor(config, registry, options, pool)
        try:
            return _execute(args, report, config, registry, options, executor)
        finally:
            executor.close()
    finally:
        if pool is not None:
            pool.close()


def _execute(
    args: argparse.Namespace,
    report: bool,
    config: StudyConfig,
    registry: Registry,
    options: RunOptions,
    executor: Executor,
) -> int:
    from ablate.report.outputs import has_failures  # jinja2, pandas, scipy: only when this runs, not at start-up

    arms = study_arms(config, registry)
    baseline = baseline_arm(config, arms)
    # this process only waits for the workers' start-up here: load what it needs next meanwhile
    loading = prefetch(*STORAGE, *(REPORT if report else ())) if executor.background else None
    env = study_environment(config, registry, arms, executor.environment)
    given = from_env(args.storage)
    out = output_dir(args.out, config) if report or not given else None
    storage = given or default_storage(out or Path("."))
    shown, stored_url = for_people(storage), without_password(storage)  # no password on screen or in the record
    what, count = _what(config, arms)
    jobs = f", {options.jobs} worker processes" if options.jobs > 1 else ""
    print(f"study {config.name}: {what} = {count} runs on {env.device}{jobs}; storage {shown}", flush=True)
    command: dict[str, Any] = {"started": dt.datetime.now().isoformat(timespec="seconds"), "seconds": None}
    wall = time.perf_counter()
    configure(getattr(args, "db_patience", DEFAULT_PATIENCE), storage)
    print("opening the study in its storage...", flush=True)
    study = open_study(config, open_storage(storage))
    log = lambda s: print(s, flush=True)
    record = lambda: study_record(config, study, arms, baseline, stored_url, command, env)
    next_round = None
    if config.adaptive:  # each round's plan is stored before it trains, so a report can be made after a crash
        next_round = round_planner(
            config, config.adaptive, study, arms, record, lambda runs: save_record(study, record(), runs), log
        )
    elif not config.design.sampled:  # stored before training, so a report can be made after a crash
        save_record(study, record(), plan_runs(config, arms))
    planned = run_study(config, registry, arms, study, storage, options, log, executor, next_round)
    trained = time.perf_counter() - wall
    arm_list = list({r.arm.name: r.arm for r in planned}.values())
    command["seconds"] = round(trained, 2)
    save_record(study, study_record(config, study, arm_list, baseline, stored_url, command, env), planned)
    if loading is not None:
        loading.join()  # before the report forks its figure processes
    if report and out is not None:
        print(f"writing the report to {out}...", flush=True)
        written = write_report(out, study)
        print(
            f"runs finished in {trained:.1f}s, report written in {time.perf_counter() - wall - trained:.1f}s: {written}"
        )
    else:
        source = "" if given and not args.storage else f" {shown}"  # with ABLATE_STORAGE, the bare command
        print(f"runs finished in {trained:.1f}s; `ablate report{source}` writes the report")
    return EXIT_FAILED_RUNS if has_failures(study) else 0


def _what(config: StudyConfig, arms: list[Arm]) -> tuple[str, str]:
    """What the study trains, and how many runs, for its first line."""
    if config.adaptive:
        low, high = config.adaptive
        return (
            f"{len(arms)} arms x {low} to {high} seeds (adaptive, rounds {describe_rounds(config.adaptive)})",
            "{} to {}".format(*runs_range(config.adaptive, arms)),
        )
    if config.design.sampled:
        return f"{config.design.kind} over a budget of {config.design.budget} arms", str(run_count(config, arms))
    return f"{len(arms)} arms x {len(config.seeds)} seeds", str(run_count(config, arms))


def write_report(out: Path, study: optuna.Study) -> Path:
    """The report; a full or read-only disk is a user error (the runs are stored)."""
    from ablate.report.outputs import write_outputs  # jinja2, pandas, scipy: only for a report

    try:
        return write_outputs(out, study)
    except OSError as exc:
        raise cannot_write_folder(out, exc) or exc from None


def cmd_plan(study_path: Path, calibrate: bool, out: Path | None = None) -> int:

    config, registry = load(study_path)
    arms = study_arms(config, registry)
    baseline_arm(config, arms)
    study_environment(config, registry, arms, lambda specs, device: probe(specs, registry, device))
    describe(config, arms)
    for line in stacking_lines(config, registry, arms):
        print(line)
    for line in stored_power(config, arms, out):
        print(line)
    if calibrate:
        print("calibrating...", flush=True)
        seconds, note = estimate_seconds(config, registry, arms)
        if config.adaptive:  # the estimate is per run: the least is every arm's min seeds
            low, high = runs_range(config.adaptive, arms)
            least = STARTUP_SECONDS + (seconds - STARTUP_SECONDS) * low / high
            print(
                f"estimated wall time: least {duration(least)} ({low} runs), most {duration(seconds)} "
                f"({high} runs) ({note})"
            )
        else:
            print(f"estimated wall time: {duration(seconds)} ({note})")
    return 0


def stacking_lines(config: StudyConfig, registry: Registry, arms: list[Arm]) -> list[str]:
    """Which arms train their seeds as one stacked model, and why the others do not."""
    if config.train["stack"] == "off":
        return ["stacking: off"]
    if config.train["compile"]:
        return [f"stacking: off: {COMPILE_ALONE}"]
    if config.design.sampled:
        return [_sampled_stacking(config)]
    if len(config.seeds) < 2 or not arms:
        return ["stacking: each run trains alone"]
    from ablate.train.stacked.grouping import can_stack  # torch: only when this runs, not at start-up

    why = {a.name: can_stack(run_spec(config, a, config.seeds[0]), registry) for a in arms}
    lines = [
        f"stacking: {sum(v is True for v in why.values())} of {len(arms)} arms train their "
        + (f"{config.adaptive[0]} seeds of each round" if config.adaptive else f"{len(config.seeds)} seeds")
        + " as one stacked model"
    ]
    lines += [f"  not stacked: {name}: {reason}" for name, reason in why.items() if reason is not True]
    return lines + shared_stack_lines(config, registry, [a for a in arms if why[a.name] is True])


def shared_stack_lines(config: StudyConfig, registry: Registry, arms: list[Arm]) -> list[str]:
    """How many stacks the stackable arms train in, and why arms that differ only in
    values a stack may hold per seat still train in separate stacks."""
    from ablate.train.stacked.grouping import shared_stack_problem  # torch: only when this runs, not at start-up

    units: dict[str, list[tuple[Arm, RunSpec]]] = {}
    for arm in arms:
        spec = run_spec(config, arm, config.seeds[0])
        units.setdefault(stack_key(spec, registry), []).append((arm, spec))
    lines, stacks = [], 0
    for unit in units.values():
        problem = shared_stack_problem([spec for _, spec in unit], registry) if len(unit) > 1 else None
        stacks += 1 if problem is None else len(unit)
        if problem is not None:
            lines.append(f"  in separate stacks: {', '.join(arm.name for arm, _ in unit)}: {problem}")
    if stacks < len(arms):
        lines.insert(
            0,
            "  arms that differ only in stopping rules, dropout or values a stack holds per seat "
            f"(learning rate, schedule, weight decay, momentum, ...) share a stack: {stacks} stack{'s' * (stacks > 1)}",
        )
    return lines


def _sampled_stacking(config: StudyConfig) -> str:
    """A sampled design's arms are not known before it runs: its search trains one
    seed per arm; a confirmation stage then trains its arms' seeds stacked where they can."""
    design, seeds = config.design, len(config.seeds)
    confirm = design.confirm_top if design.kind == "search" else 0
    if not confirm or seeds < 2:
        return "stacking: each run trains alone (a sampled arm trains one seed)"
    return (
        f"stacking: the search's runs train alone (one seed per sampled arm); the confirmation (top {confirm}) "
        f"trains each confirmed arm's {seeds} seeds as one stacked model (one by one for an arm that cannot stack)"
    )


def stored_power(config: StudyConfig, arms: list[Arm], out: Path | None = None) -> list[str]:
    """Once runs of this study are stored (in ``out``, by default its output folder), what its seeds can detect."""
    db = (out if out is not None else Path("reports") / config.name) / "study.db"
    if config.design.sampled or not db.is_file():
        return []
    import optuna

    from ablate.engine.store.results import collect  # pandas: only when this runs, not at start-up
    from ablate.report.power import power_lines  # jinja2, pandas, scipy: only when this runs, not at start-up

    try:
        study = optuna.load_study(study_name=config.name, storage=sqlite_url(db))
    except Exception:  # a database of another study or version: nothing to plan with
        return []
    table, _ = collect(study, record_entries(plan_runs(config, arms)), _factor_names(arms))
    if table.empty:
        return []
    return [f"from the {len(table)} runs stored in {db.parent}:"] + [
        "  " + line for line in power_lines(table, baseline_arm(config, arms))
    ]
