"""`ablate report` and `ablate compare`: reports from what is already stored, no training.

`report` rebuilds a study's folder (tables, figures, page) from its Optuna
storage alone, through the same ablate.report.outputs.write_outputs that `ablate run`
uses, so both give the same files. `compare` reads finished report folders
(results.csv + results.json) and puts their arms side by side.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ablate.engine.store import attrs
from ablate.engine.store.db_patience import configure, db_patience_option
from ablate.engine.store.record import StudyRecord
from ablate.engine.store.storage_url import for_people, from_env, sqlite_path, sqlite_url
from ablate.errors import UserError, did_you_mean

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from ablate.engine.store.optuna_schema import ReportStudy

COMMANDS = ("report", "compare")


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Add `report` and `compare` to the CLI's subparsers."""
    rep = subparsers.add_parser("report", help="rebuild a study's report from its stored runs, without training")
    rep.add_argument(
        "source",
        nargs="?",
        default=None,
        help="an output folder (reads FOLDER/study.db) or an Optuna storage URL (default: $ABLATE_STORAGE)",
    )
    rep.add_argument(
        "--out", type=Path, default=None, help="output folder (default: the folder given, else reports/<study name>)"
    )
    rep.add_argument("--study", default=None, help="the study to report when the storage holds several")
    db_patience_option(rep)
    cmp = subparsers.add_parser("compare", help="put the arms of several finished studies side by side")
    cmp.add_argument("dirs", nargs="+", type=Path, help="report folders, each with results.csv and results.json")
    cmp.add_argument(
        "--out",
        type=Path,
        default=Path("reports") / "compare",
        help="output folder for compare.html and compare.csv (default: reports/compare)",
    )


def run(args: argparse.Namespace) -> int:
    """Dispatch a parsed `report` or `compare` command; UserError for the user's mistakes."""
    if args.command == "report":
        return cmd_report(args)
    if args.command == "compare":
        return cmd_compare(args)
    raise ValueError(f"not a report command: {args.command}")


def storage_url(source: str) -> tuple[str, Path | None]:
    """(URL, folder or None): a folder means sqlite:///FOLDER/study.db, anything with :// is a URL."""
    if "://" in source:
        path = sqlite_path(source)
        if path is not None and not Path(path).is_file():
            raise UserError(
                f"no SQLite database at {path}",
                key="report",
                expected="the study.db that `ablate run` wrote, or another storage URL",
            )
        return source, None
    folder = Path(source)
    db = folder / "study.db"
    if not folder.is_dir():
        raise UserError(
            f"{source}: not a folder or a storage URL",
            key="report",
            expected="an output folder of `ablate run` (with study.db) or a URL such as sqlite:///PATH/study.db",
        )
    if not db.is_file():
        raise UserError(
            f"{folder}: no study.db in this folder",
            key="report",
            expected="the --out folder of `ablate run`; with --storage URL, pass that URL",
        )
    return sqlite_url(db), folder


def open_stored_study(url: str, name: str | None) -> ReportStudy:
    """The one ablate study in the storage, or the one --study names; a clear error otherwise.
    An SQLite file is read directly (``optuna_schema``), any other storage through Optuna."""
    from ablate.engine.store import optuna_schema  # optuna: only when this runs

    path = sqlite_path(url)
    names = optuna_schema.study_names(path) if path is not None else None
    if path is not None and names is not None:
        study: ReportStudy = optuna_schema.open_study(path, _chosen(names, name, url))
    else:
        storage, names = _through_optuna(url)
        study = _loaded(storage, _chosen(names, name, url))
    stored = optuna_schema.user_attrs(study)
    missing = [k for k in (attrs.RECORD, attrs.PLAN) if k not in stored]
    if missing:
        raise UserError(
            f"study {study.study_name!r} has no {' or '.join(missing)} stored",
            key="report",
            expected="a study written by this version of `ablate run` (run it again to store them)",
        )
    return study


def _through_optuna(url: str) -> tuple[optuna.storages.RDBStorage, list[str]]:
    """The storage opened to read through Optuna, and its studies' names."""
    import optuna

    from ablate.engine.store.storage import (
        cannot_open,
        open_for_reading,
    )  # optuna, sqlalchemy: only when this runs, not at start-up

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        storage = open_for_reading(url)  # read, never create
        return storage, [s.study_name for s in storage.get_all_studies()]
    except UserError:
        raise
    except Exception as exc:
        raise cannot_open(url, exc, key="report") from None


def _loaded(storage: optuna.storages.RDBStorage, name: str) -> optuna.Study:
    import optuna

    from ablate.engine.store.retrying_storage import retrying  # optuna: only when this runs

    return optuna.load_study(study_name=name, storage=retrying(storage))  # reads ride through a restart


def _chosen(names: list[str], name: str | None, url: str) -> str:
    """The study to report: the one --study names, else the storage's only one."""
    if not names:
        raise UserError(f"the storage {for_people(url)} holds no study", key="report")
    if name is None:
        if len(names) > 1:
            raise UserError(
                f"the storage holds {len(names)} studies: {', '.join(sorted(names))}",
                key="--study",
                expected="--study NAME, one of those",
            )
        return names[0]
    if name not in names:
        raise UserError(
            f"no study named {name!r} in the storage",
            key="--study",
            expected="one of: " + ", ".join(sorted(names)),
            hint=did_you_mean(name, names),
        )
    return name


def cmd_report(args: argparse.Namespace) -> int:
    source = from_env(args.source)
    if source is None:
        raise UserError(
            "no study to report",
            key="report",
            expected="an output folder of `ablate run`, a storage URL, or that URL in ABLATE_STORAGE",
        )
    url, folder = storage_url(source)
    configure(args.db_patience, url)
    # A report's matrices are small: BLAS threads would only spin (a quarter of a second of a
    # core as numpy loads), so one, here and in the figure workers, unless the environment says.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from ablate.report.figure_workers import early_workers  # multiprocessing: only when this runs

    with early_workers() as pool:  # they load matplotlib and pandas while this loads its own, reads and analyses
        from ablate.engine.store.optuna_schema import user_attrs  # optuna: only when this runs
        from ablate.report.outputs import write_outputs  # jinja2, optuna, scipy: only when this runs

        study = open_stored_study(url, args.study)
        record = StudyRecord.from_json(user_attrs(study)[attrs.RECORD])
        out = args.out or folder or Path("reports") / (record.name or study.study_name)
        try:
            Path(out).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create the output folder: {exc}", key="--out") from None
        path = write_outputs(Path(out), study, pool)
    print(f"report of {study.study_name} written from stored runs: {path}")
    return 0


def read_report_dir(folder: Path) -> tuple[pd.DataFrame, StudyRecord]:
    """(table, StudyRecord) from a finished report folder."""
    import pandas as pd

    csv, js = folder / "results.csv", folder / "results.json"
    for f in (csv, js):
        if not f.is_file():
            raise UserError(
                f"{folder}: no {f.name}",
                key="compare",
                expected="report folders written by `ablate run` or `ablate report`",
            )
    try:
        record = StudyRecord.from_json(json.loads(js.read_text(encoding="utf-8")).get("study") or {})
        table = pd.read_csv(csv)
    except (ValueError, OSError) as exc:
        raise UserError(f"{folder}: cannot read the results: {exc}".splitlines()[0], key="compare") from None
    if "arm" not in table.columns:
        raise UserError(f"{csv}: no 'arm' column", key="compare", expected="results.csv written by ablate")
    return table, record


def cmd_compare(args: argparse.Namespace) -> int:
    from ablate.report.compare import (
        write_compare,
    )  # jinja2, matplotlib, pandas, scipy: only when this runs, not at start-up

    studies = [(Path(d), *read_report_dir(Path(d))) for d in args.dirs]
    try:
        Path(args.out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the output folder: {exc}", key="--out") from None
    path = write_compare(Path(args.out), studies)
    print(f"{len(studies)} studies compared: {path}")
    return 0
