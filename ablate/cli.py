"""`ablate run | plugins`: the command line. Exit 0 on success, 2 on a user
error (printed in a few lines, no traceback), 1 on an internal error."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import platform
import sys
import time
import traceback
from pathlib import Path

from ablate import __version__, plugins_command, report_commands, scaffold
from ablate.disabling import set_disabled
from ablate.errors import UserError

EXIT_USER = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ablate", description="Ablation studies of neural-network training.")
    parser.add_argument("--version", action="version", version=f"ablate {__version__}")
    parser.add_argument("--disable-plugin", action="append", default=[], metavar="NAME",
                        help="do not load this plugin (package or plugin name; repeatable; "
                             "also ABLATE_DISABLE_PLUGINS=a,b)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser("run", help="train every missing (arm, seed) of a study and write its report")
    run.add_argument("study", type=Path, help="the study file (TOML)")
    run.add_argument("--out", type=Path, default=None, help="output folder (default: reports/<study name>)")
    run.add_argument("--storage", default=None,
                     help="Optuna storage URL (default: sqlite:///OUT/study.db)")
    run.add_argument("--dry-run", action="store_true", help="print the plan (as `ablate plan`) and stop")
    plan = sub.add_parser("plan", help="print the design, its arms, the run count and a time estimate")
    plan.add_argument("study", type=Path, help="the study file (TOML)")
    plan.add_argument("--no-calibrate", action="store_true",
                      help="skip the short calibration runs behind the time estimate")
    plugins_command.add_parser(sub)
    scaffold.add_parser(sub)
    report_commands.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    set_disabled(args.disable_plugin)
    if args.command is None:
        _parser().print_help()
        return EXIT_USER
    try:
        if args.command == "plugins":
            return plugins_command.run(args)
        if args.command == "new-plugin":
            return scaffold.run(args)
        if args.command in report_commands.COMMANDS:
            return report_commands.run(args)
        if args.command == "plan":
            return cmd_plan(args.study, calibrate=not args.no_calibrate)
        if args.dry_run:
            return cmd_plan(args.study, calibrate=True)
        return cmd_run(args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print("\ninterrupted: finished runs are stored; run the same command again to resume",
              file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        print("internal error: this is a bug in ablate or a plugin; please report it with the "
              "traceback above", file=sys.stderr)
        return 1


def _load(study_path: Path):
    from ablate.config import load_study, plugin_files_of
    from ablate.manager import build_registry, make_plugin_manager

    pm = make_plugin_manager(plugin_files_of(study_path))
    registry = build_registry(pm)
    return load_study(study_path, registry), registry


def versions() -> dict[str, str]:
    import optuna
    import torch

    return {"ablate": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "optuna": optuna.__version__}


def cmd_plan(study_path: Path, calibrate: bool) -> int:
    from ablate.design import baseline_arm, build_arms
    from ablate.plan import describe, estimate_seconds
    from ablate.preflight import check_study

    config, registry = _load(study_path)
    arms = build_arms(config, registry)
    baseline_arm(config, arms)
    check_study(config, registry, arms)
    describe(config, arms)
    if calibrate:
        print("calibrating...", flush=True)
        seconds, note = estimate_seconds(config, registry, arms)
        print(f"estimated wall time: {_duration(seconds)} ({note})")
    return 0


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"~{seconds:.0f} s"
    if seconds < 5400:
        return f"~{seconds / 60:.1f} min"
    return f"~{seconds / 3600:.1f} h"


def cmd_run(args: argparse.Namespace) -> int:
    from ablate.design import baseline_arm, build_arms
    from ablate.engine import default_storage, run_study
    from ablate.plan import run_count
    from ablate.preflight import check_study
    from ablate.results import factor_columns, plan_record
    from ablate.training import pick_device

    config, registry = _load(args.study)
    arms = build_arms(config, registry)
    baseline = baseline_arm(config, arms)
    check_study(config, registry, arms)
    out = args.out if args.out is not None else Path("reports") / config.name
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the output folder: {exc}", key="--out") from None
    storage = args.storage or default_storage(out)
    device = pick_device(config.train["device"])
    what = (f"{config.design.kind} over a budget of {config.design.budget} arms" if config.design.sampled
            else f"{len(arms)} arms x {len(config.seeds)} seeds")
    print(f"study {config.name}: {what} = {run_count(config, arms)} runs on {device}; output {out}", flush=True)
    started, wall = dt.datetime.now().isoformat(timespec="seconds"), time.perf_counter()
    study, planned = run_study(config, registry, arms, storage, log=lambda s: print(s, flush=True))
    trained = time.perf_counter() - wall
    arm_list = list({r.arm.name: r.arm for r in planned}.values())
    meta = {
        "name": config.name, "question": config.question, "study_file": str(args.study),
        "design": dataclasses.asdict(config.design),
        "dataset": config.data.name, "data": config.data.params, "model": config.model.name,
        "model_params": config.model.params, "train": config.train, "seeds": config.seeds,
        "arms": [a.name for a in arm_list], "baseline": baseline, "factors": factor_columns(arm_list),
        "runs_total": len(planned), "device": str(device), "versions": versions(),
        "started": started, "seconds": round(time.perf_counter() - wall, 2), "storage": storage,
        "optuna_study": study.study_name,
    }
    study.set_user_attr("meta", meta)
    study.set_user_attr("plan", plan_record(planned))
    from ablate.outputs import write_outputs

    written = write_outputs(out, study)
    print(f"runs finished in {trained:.1f}s, report written in {time.perf_counter() - wall - trained:.1f}s: "
          f"{written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
