"""`ablate run | plugins`: the command line. Exit 0 on success, 2 on a user
error (printed in a few lines, no traceback), 1 on an internal error."""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import time
import traceback
from pathlib import Path

from ablate import __version__
from ablate.errors import UserError

EXIT_USER = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ablate", description="Ablation studies of neural-network training.")
    parser.add_argument("--version", action="version", version=f"ablate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser("run", help="train every missing (arm, seed) of a study and write its report")
    run.add_argument("study", type=Path, help="the study file (TOML)")
    run.add_argument("--out", type=Path, default=None, help="output folder (default: reports/<study name>)")
    run.add_argument("--storage", default=None,
                     help="Optuna storage URL (default: sqlite:///OUT/study.db)")
    sub.add_parser("plugins", help="list every component by kind, with the plugin that provides it")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return EXIT_USER
    try:
        if args.command == "plugins":
            return cmd_plugins()
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


def cmd_plugins() -> int:
    from ablate.manager import build_registry, make_plugin_manager
    from ablate.registry import KINDS

    registry = build_registry(make_plugin_manager())
    width = max(len(c.name) for c in registry.all())
    for kind in KINDS:
        comps = [c for c in registry.all() if c.kind == kind]
        print(f"{kind}:")
        for c in comps:
            params = ", ".join(f"{k}={v.default!r}" for k, v in c.params.items())
            print(f"  {c.name:<{width}}  [{c.plugin}]  {c.help}" + (f"  ({params})" if params else ""))
    return 0


def versions() -> dict[str, str]:
    import optuna
    import torch

    return {"ablate": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "optuna": optuna.__version__}


def cmd_run(args: argparse.Namespace) -> int:
    from ablate.design import baseline_arm, factorial
    from ablate.engine import default_storage, plan_runs, run_study
    from ablate.training import pick_device

    config, registry = _load(args.study)
    arms = factorial(config)
    baseline = baseline_arm(config, arms)
    out = args.out if args.out is not None else Path("reports") / config.name
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the output folder: {exc}", key="--out") from None
    storage = args.storage or default_storage(out)
    device = pick_device(config.train["device"])
    print(f"study {config.name}: {len(arms)} arms x {len(config.seeds)} seeds = "
          f"{len(arms) * len(config.seeds)} runs on {device}; output {out}", flush=True)
    started, wall = dt.datetime.now().isoformat(timespec="seconds"), time.perf_counter()
    study = run_study(config, registry, arms, storage, log=lambda s: print(s, flush=True))
    trained = time.perf_counter() - wall
    planned = plan_runs(config, arms)
    meta = {
        "name": config.name, "question": config.question, "study_file": str(args.study),
        "dataset": config.data.name, "data": config.data.params, "model": config.model.name,
        "model_params": config.model.params, "train": config.train, "seeds": config.seeds,
        "arms": [a.name for a in arms], "baseline": baseline,
        "runs_total": len(planned), "device": str(device), "versions": versions(),
        "started": started, "seconds": round(time.perf_counter() - wall, 2), "storage": storage,
        "optuna_study": study.study_name,
    }
    from ablate.results import factor_columns, plan_record

    meta["factors"] = factor_columns(arms)
    study.set_user_attr("meta", meta)
    study.set_user_attr("plan", plan_record(planned))
    from ablate.outputs import write_outputs

    written = write_outputs(out, study)
    print(f"runs finished in {trained:.1f}s, report written in {time.perf_counter() - wall - trained:.1f}s: "
          f"{written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
