"""Write a study's tables and report from what its storage holds, so `ablate
run` and a later rebuild from storage produce the same files."""

from __future__ import annotations

from pathlib import Path

import optuna


def write_outputs(out: Path, study: optuna.Study) -> Path:
    """results.csv, results.json and the report; returns the index.html path."""
    from ablate.report import write_report
    from ablate.results import collect, write_tables

    meta = study.user_attrs["meta"]
    table, histories = collect(study, study.user_attrs["plan"], meta["factors"])
    write_tables(out, table, histories, meta)
    return write_report(out, table, histories, meta)
