"""Trials in storage -> a tidy table, one row per planned (arm, seed).

De-duplicated here, at analysis time: parallel workers may run a run twice at
the tail, and only the planned runs of the current study file count.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from ablate.engine.store import attrs
from ablate.engine.store.optuna_internals import StoredTrial
from ablate.engine.store.optuna_schema import ReportStudy
from ablate.engine.store.record import RunEntry, StudyRecord
from ablate.engine.store.trials import is_done, run_outcomes

METRICS = ["train_accuracy", "val_accuracy", "test_accuracy", "gap", "train_loss", "val_loss", "test_loss", "loss_gap"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


Stored = FrozenTrial | StoredTrial


def _pick(trials: list[Stored]) -> Stored | None:
    """The newest completed training of a run (a retrained run counts anew), else its
    newest pruning or failure."""
    done = [t for t in trials if is_done(t)]
    done.sort(key=lambda t: (t.state != TrialState.COMPLETE, attrs.REPEAT_OF in t.user_attrs, -t.number))
    return done[0] if done else None


def _row(run: RunEntry, trial: Stored, columns: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(table row, stored result) of one run's chosen trial."""
    pruned = trial.user_attrs.get(attrs.PRUNED)
    failed = attrs.FAILURE in trial.user_attrs
    result = {**pruned, "stop_reason": "pruned"} if pruned else trial.user_attrs.get(attrs.RESULT, {})
    row: dict[str, Any] = {
        "arm": run.arm,
        "arm_key": run.arm_key,
        "seed": run.seed,
        "status": "failed" if failed else "pruned" if pruned else "complete",
        "stage": run.stage,
    }
    row.update({col: run.values.get(col) for col in columns})
    metrics = result.get("metrics", {})
    row.update({m: metrics.get(m, math.nan) for m in METRICS})
    row["epochs"] = result.get("epochs", 0)
    row["stop_reason"] = result.get("stop_reason", "failed" if failed else "")
    row["seconds"] = result.get("seconds", math.nan)
    row["failure"] = trial.user_attrs.get(attrs.FAILURE, f"pruned at epoch {row['epochs']}" if pruned else "")
    row["trial"] = trial.number
    return row, result


def collect(
    study: ReportStudy, plan: Sequence[RunEntry], columns: Sequence[str]
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """(table, histories) for the planned runs that have a stored outcome."""
    states = run_outcomes(study)
    rows, histories = [], []
    for run in plan:
        trial = _pick(states.get(run.key, []))
        if trial is None:
            continue
        row, result = _row(run, trial, columns)
        rows.append(row)
        detail = trial.user_attrs.get(attrs.FAILURE_DETAIL, {})
        if result.get("history") or detail:
            histories.append(
                {
                    "arm": run.arm,
                    "seed": run.seed,
                    "history": result.get("history", []),
                    "config": result.get("config", {}),
                    "traceback": detail.get("traceback", ""),
                }
            )
    columns = [
        "arm",
        "arm_key",
        "seed",
        "status",
        "stage",
        *columns,
        *METRICS,
        "epochs",
        "stop_reason",
        "seconds",
        "failure",
        "trial",
    ]
    return pd.DataFrame(rows, columns=columns), histories


def failure_details(study: optuna.Study, plan: Sequence[RunEntry]) -> dict[tuple[str, int], dict[str, Any]]:
    """(arm, seed) -> the failure record (component, type, message, traceback) of failed runs."""
    states = run_outcomes(study)
    out = {}
    for run in plan:
        trial = _pick(states.get(run.key, []))
        if trial is not None and attrs.FAILURE_DETAIL in trial.user_attrs:
            out[(run.arm, run.seed)] = trial.user_attrs[attrs.FAILURE_DETAIL]
    return out


def value_columns(values: Sequence[dict[str, Any]]) -> list[str]:
    """Factor and varied sub-parameter columns, in the order they first appear."""
    cols: dict[str, None] = {}
    for v in values:
        for k in v:
            cols.setdefault(k, None)
    return list(cols)


def spreadsheet_safe(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula ('=1+1') is quoted as text."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_tables(out_dir: Path, table: pd.DataFrame, histories: list[dict[str, Any]], record: StudyRecord) -> None:
    """results.csv (one row per run) and results.json (record, rows and histories), full precision."""
    safe = table.copy()
    for col in safe.columns:
        if safe[col].dtype == object:
            safe[col] = safe[col].map(spreadsheet_safe)
    safe.columns = [spreadsheet_safe(str(c)) for c in safe.columns]
    safe.to_csv(out_dir / "results.csv", index=False)
    by_run = {(h["arm"], h["seed"]): h for h in histories}
    runs = []
    for row in table.to_dict(orient="records"):
        h = by_run.get((row["arm"], row["seed"]), {})
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        runs.append({**clean, "history": h.get("history", []), "config": h.get("config", {})})
    (out_dir / "results.json").write_text(_results_json(record.to_json(), runs))


def _results_json(study: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    """{"study": ..., "runs": [...]} with one run per line: readable, and every run
    written by json's C encoder (an indented dump runs the pure-Python one, 0.1 s
    for the quickstart's 36 runs)."""
    head = json.dumps(study, indent=1, default=_json_default)
    lines = ",\n  ".join(json.dumps(run, default=_json_default) for run in runs)
    return f'{{"study": {head},\n "runs": [\n  {lines}\n ]}}\n' if runs else f'{{"study": {head},\n "runs": []}}\n'


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)
