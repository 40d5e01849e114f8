"""The command line: `ablate run | worker | plan | report | compare | plugins`.

Exit status: 0 success; 2 a mistake the user can fix (printed in a few lines
naming the file, the key, what was expected and the nearest valid name, no
traceback); 3 a study that finished with failed runs; 1 an internal error;
130 interrupted; 141 output cut short by a reader that closed the pipe (`ablate
plan study.toml | head -1`; `ablate run` trains on and keeps its own status).
Commands import what they need when they run, so `--help` answers at once.
"""

from __future__ import annotations

import argparse
import signal
import sys
import traceback
from pathlib import Path

from ablate.engine import quick_exit

quick_exit.install()  # before any other exit handler is registered: it runs after them all

from ablate import __version__  # noqa: E402
from ablate.cli import plugins_command, report_commands, scaffold  # noqa: E402
from ablate.engine import closed_stdout  # noqa: E402
from ablate.engine.store.db_patience import db_patience_option  # noqa: E402
from ablate.engine.store.storage_url import from_env  # noqa: E402
from ablate.errors import UserError  # noqa: E402
from ablate.plugin.disabling import set_disabled  # noqa: E402

EXIT_USER = 2
# A reader that closed stdout early (`| head -1`) ends a command that only prints
# with 128 + SIGPIPE, the status a shell shows for standard tools killed by that
# signal (`git log | head -1`, `yes | head -1`): the output is cut short, and a
# script under `set -o pipefail` learns it as it would from them; 0 would claim a
# complete output (plan's estimate, say) that nobody received.
EXIT_STDOUT_CLOSED = 128 + signal.SIGPIPE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ablate", description="Ablation studies of neural-network training.")
    parser.add_argument("--version", action="version", version=f"ablate {__version__}")
    parser.add_argument(
        "--disable-plugin",
        action="append",
        default=[],
        metavar="NAME",
        help="do not load this plugin (package or plugin name; repeatable; also ABLATE_DISABLE_PLUGINS=a,b)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser("run", help="train every missing (arm, seed) of a study and write its report")
    run.add_argument("study", type=Path, help="the study file (TOML)")
    run.add_argument("--out", type=Path, default=None, help="output folder (default: reports/<study name>)")
    run.add_argument(
        "--storage",
        default=None,
        help="Optuna storage URL (default: $ABLATE_STORAGE, else sqlite:///OUT/study.db); "
        "keep a password out of it: PGPASSWORD or ~/.pgpass",
    )
    run.add_argument("--dry-run", action="store_true", help="print the plan (as `ablate plan`) and stop")
    _execution_options(run)
    worker = sub.add_parser(
        "worker", help="train runs of a study on a shared storage, beside other workers (any machine; no report)"
    )
    worker.add_argument("study", type=Path, help="the study file (TOML), the same on every machine")
    worker.add_argument(
        "--storage",
        default=None,
        help="the shared Optuna storage URL, e.g. postgresql://USER@HOST/DB (default: $ABLATE_STORAGE); "
        "the password from PGPASSWORD or ~/.pgpass",
    )
    worker.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    _execution_options(worker)
    plan = sub.add_parser("plan", help="print the design, its arms, the run count and a time estimate")
    plan.add_argument("study", type=Path, help="the study file (TOML)")
    plan.add_argument(
        "--out", type=Path, default=None, help="the folder of its stored runs (default: reports/<study name>)"
    )
    plan.add_argument(
        "--no-calibrate", action="store_true", help="skip the short calibration runs behind the time estimate"
    )
    plugins_command.add_parser(sub)
    scaffold.add_parser(sub)
    report_commands.add_parsers(sub)
    return parser


def _execution_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs",
        default="1",
        type=_jobs,
        metavar="N",
        help="worker processes on this machine (default 1; auto = the usable cores); each gets cores/N torch threads",
    )
    parser.add_argument("--retry-failed", action="store_true", help="train runs that failed before again")
    db_patience_option(parser)
    parser.add_argument(
        "--retrain-changed",
        action="store_true",
        help="train again the stored runs whose components' plugin versions changed since",
    )


def _jobs(value: str) -> str | int:
    if value == "auto":
        return value
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: expected a number of processes (1 or more) or 'auto'")
    return int(value)


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM (a scheduler, `kill`) stops like Ctrl-C: runs in progress are given back at once."""
    raise KeyboardInterrupt


def dispatch(args: argparse.Namespace) -> int:
    if args.command == "plugins":
        return plugins_command.run(args)
    if args.command == "new-plugin":
        return scaffold.run(args)
    if args.command in report_commands.COMMANDS:
        return report_commands.run(args)
    if args.command == "plan" or getattr(args, "dry_run", False):
        from ablate.cli import run_command  # optuna and the engine: only for the commands that use them

        return run_command.cmd_plan(args.study, not getattr(args, "no_calibrate", False), getattr(args, "out", None))
    if args.command == "worker" and not from_env(args.storage):
        raise UserError(
            "no storage to share: a worker trains runs of a study that other machines reach",
            key="--storage",
            expected="--storage postgresql://USER@HOST/DB, or that URL in ABLATE_STORAGE "
            "(the password from PGPASSWORD or ~/.pgpass, never on the command line)",
        )
    signal.signal(signal.SIGTERM, _terminate)
    from ablate.engine.pool import start_early, usable_cores  # multiprocessing: only for the commands that train

    cores = usable_cores()
    if args.jobs != "auto" and args.jobs > cores:  # each worker imports torch: hundreds of MB
        print(
            f"note: --jobs {args.jobs} is more than this machine's usable cores: starting one worker "
            f"process per core ({cores}); more would only share the cores",
            file=sys.stderr,
        )
        args.jobs = cores
    pool = start_early(args.study, args.jobs)  # its imports run beside ours: on another core
    from ablate.cli import run_command  # optuna, sqlalchemy: only when this runs, not at start-up

    return run_command.execute(args, report=args.command != "worker", pool=pool)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    set_disabled(args.disable_plugin)
    if args.command is None:
        _parser().print_help()
        return EXIT_USER
    # training goes on when nobody reads its progress: results are stored, the report is written
    trains = args.command in ("run", "worker") and not getattr(args, "dry_run", False)
    try:
        with closed_stdout.guard(keep_going=trains):
            return dispatch(args)
    except closed_stdout.StdoutClosed:
        return EXIT_STDOUT_CLOSED
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print(
            "\ninterrupted" + (": finished runs are stored; run the same command again to resume" if trains else ""),
            file=sys.stderr,
        )
        return 130
    except Exception:
        traceback.print_exc()
        print(
            "internal error: this is a bug in ablate or a plugin; please report it with the traceback above",
            file=sys.stderr,
        )
        return 1


def program() -> None:
    """The `ablate` program: main's status, without the interpreter's teardown (seconds
    once torch is imported); exit handlers still run. Tests and scripts call ``main``."""
    status = main()
    quick_exit.set_status(status)
    sys.exit(status)


if __name__ == "__main__":
    program()
