"""Write a study's tables and report from what its storage holds, so `ablate
run` and a later rebuild from storage produce the same files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from ablate.record import StudyRecord

# Keys of the stored meta dict that StudyRecord names differently.
_RENAMED = {"data": "data_params"}


def record_from_meta(meta: dict[str, Any]) -> StudyRecord:
    """A StudyRecord from the meta dict `ablate run` stores today (or a record's own JSON):
    "data" -> data_params, "seconds" -> last_command.seconds, "device" -> devices."""
    data = {_RENAMED.get(k, k): v for k, v in (meta or {}).items()}
    if "seconds" in data and "last_command" not in data:
        data["last_command"] = {"started": data.get("started", ""), "seconds": data.pop("seconds")}
    if data.get("device") and not data.get("devices"):
        data["devices"] = [str(data.pop("device"))]
    return StudyRecord.from_json(data)


def write_outputs(out: Path, study: optuna.Study) -> Path:
    """results.csv, results.json and the report; returns the index.html path."""
    from ablate.report import write_report
    from ablate.results import collect, write_tables

    record = record_from_meta(study.user_attrs["meta"])
    table, histories = collect(study, study.user_attrs["plan"], list(record.factors))
    write_tables(out, table, histories, record.to_json())
    table, histories, record = confirmed_only(table, histories, record)
    return write_report(out, table, histories, record)


def confirmed_only(table: Any, histories: list[dict[str, Any]],
                   record: StudyRecord) -> tuple[Any, list[dict[str, Any]], StudyRecord]:
    """A search with a confirmation stage reports the confirmed runs; its search
    runs (one seed each, chosen for being good on it) are listed apart."""
    if "stage" not in table.columns or not (table["stage"] == "confirm").any():
        return table, histories, record
    search = table[table["stage"] == "search"].sort_values("val_accuracy", ascending=False, kind="stable")
    main = table[table["stage"] == "confirm"].reset_index(drop=True)
    keep = set(zip(main["arm"], main["seed"]))
    runs = tuple({"arm": r["arm"], "seed": int(r["seed"]), "status": r["status"],
                  "val_accuracy": r["val_accuracy"], "test_accuracy": r["test_accuracy"], "gap": r["gap"],
                  "epochs": int(r["epochs"]), "confirmed": r["arm"] in set(main["arm"])}
                 for r in search.to_dict("records"))
    record = record.replace(arms=tuple(dict.fromkeys(main["arm"])), runs_total=len(main), search_runs=runs)
    return main, [h for h in histories if (h["arm"], h["seed"]) in keep], record
