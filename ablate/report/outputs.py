"""Write a study's tables and report from what its storage holds, so `ablate
run` and a later rebuild from storage produce the same files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import pandas as pd

from ablate.engine.store import attrs
from ablate.engine.store.optuna_schema import ReportStudy, user_attrs
from ablate.engine.store.record import RunEntry, StudyRecord
from ablate.engine.store.storage_url import without_password
from ablate.errors import UserError
from ablate.report import write_report

if TYPE_CHECKING:  # the pool's type only: its module is the figure workers'
    from ablate.report.figure_pool import ForkedPool


def stored_record(study: ReportStudy) -> tuple[StudyRecord, list[RunEntry]]:
    """The record and plan stored with the study; the password that records written
    by older versions kept in their storage URL is dropped, so no report shows it."""
    stored = user_attrs(study)
    record = StudyRecord.from_json(stored[attrs.RECORD])
    record = record.replace(storage=without_password(record.storage))
    return record, [RunEntry.from_json(e) for e in stored[attrs.PLAN]]


def has_failures(study: optuna.Study) -> bool:
    """Whether a planned run of the study ended failed."""
    from ablate.engine.store.results import failure_details  # sqlalchemy: only when this runs, not at start-up

    _, plan = stored_record(study)
    return bool(failure_details(study, plan))


def write_outputs(out: Path, study: ReportStudy, pool: ForkedPool | None = None) -> Path:
    """results.csv, results.json and the report; returns the index.html path. ``pool``:
    figure workers forked earlier (``early_workers``)."""
    from ablate.engine.store.results import collect, write_tables  # sqlalchemy: only when this runs, not at start-up

    record, plan = stored_record(study)
    table, histories = collect(study, plan, record.factors)
    try:
        every = (table, histories, record)  # the tables list every run, search runs included
        table, histories, record = confirmed_only(table, histories, record)
        return write_report(out, table, histories, record, pool, while_drawing=lambda: write_tables(out, *every))
    except OSError as exc:
        raise UserError(
            f"cannot write {exc.filename or out}: {exc.strerror or exc}",
            key="--out",
            expected=f"a folder you can write; the runs are stored: `ablate report {out}` writes the report again",
        ) from None


def confirmed_only(
    table: pd.DataFrame, histories: list[dict[str, Any]], record: StudyRecord
) -> tuple[pd.DataFrame, list[dict[str, Any]], StudyRecord]:
    """A search with a confirmation stage reports the confirmed runs; its search
    runs (one seed each, chosen for being good on it) are listed apart."""
    if "stage" not in table.columns or not (table["stage"] == attrs.CONFIRM).any():
        return table, histories, record
    search = table[table["stage"] == attrs.SEARCH].sort_values("val_accuracy", ascending=False, kind="stable")
    main = table[table["stage"] == attrs.CONFIRM].reset_index(drop=True)
    keep = set(zip(main["arm"], main["seed"]))
    confirmed = set(main["arm"])
    runs = tuple(
        {
            "arm": r["arm"],
            "seed": int(r["seed"]),
            "status": r["status"],
            "val_accuracy": r["val_accuracy"],
            "test_accuracy": r["test_accuracy"],
            "gap": r["gap"],
            "epochs": int(r["epochs"]),
            "confirmed": r["arm"] in confirmed,
        }
        for r in search.to_dict("records")
    )
    record = record.replace(arms=tuple(dict.fromkeys(main["arm"])), runs_total=len(main), search_runs=runs)
    return main, [h for h in histories if (h["arm"], h["seed"]) in keep], record
