"""Trials in storage -> a tidy table, one row per planned (arm, seed).

De-duplicated here, at analysis time: parallel workers may run a run twice at
the tail, and only the planned runs of the current study file count.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import TrialState

from ablate.design import Arm
from ablate.engine import PlannedRun, is_done, run_states

METRICS = ["train_accuracy", "val_accuracy", "test_accuracy", "gap", "train_loss", "val_loss",
           "test_loss", "loss_gap"]


def _pick(trials: list[optuna.trial.FrozenTrial]) -> optuna.trial.FrozenTrial | None:
    """The first completed trial of a run, else its first recorded failure."""
    done = [t for t in trials if is_done(t)]
    done.sort(key=lambda t: (t.state != TrialState.COMPLETE, "repeat_of" in t.user_attrs, t.number))
    return done[0] if done else None


def plan_record(planned: list[PlannedRun]) -> list[dict[str, Any]]:
    """The plan as stored with the study, so a report needs only the storage."""
    return [{"key": r.key, "arm": r.arm.name, "seed": r.seed, "values": r.arm.values, "stage": r.stage}
            for r in planned]


def collect(study: optuna.Study, plan: list[dict[str, Any]],
            factor_columns: list[str]) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """(table, histories) for the planned runs that have a stored outcome."""
    states = run_states(study)
    rows, histories = [], []
    for run in plan:
        trial = _pick(states.get(run["key"], []))
        if trial is None:
            continue
        row: dict[str, Any] = {"arm": run["arm"], "seed": run["seed"]}
        pruned = trial.user_attrs.get("pruned")
        row["status"] = "failed" if "failure" in trial.user_attrs else "pruned" if pruned else "complete"
        row["stage"] = run.get("stage", "main")
        for col in factor_columns:
            row[col] = run["values"].get(col)
        result = {**pruned, "stop_reason": "pruned"} if pruned else trial.user_attrs.get("result", {})
        metrics = result.get("metrics", {})
        for m in METRICS:
            row[m] = metrics.get(m, math.nan)
        row["epochs"] = result.get("epochs", 0)
        row["stop_reason"] = result.get("stop_reason", "failed" if row["status"] == "failed" else "")
        row["seconds"] = result.get("seconds", math.nan)
        row["failure"] = trial.user_attrs.get("failure", f"pruned at epoch {row['epochs']}" if pruned else "")
        row["trial"] = trial.number
        rows.append(row)
        if result.get("history"):
            histories.append({"arm": run["arm"], "seed": run["seed"], "history": result["history"],
                              "config": result.get("config", {})})
    columns = ["arm", "seed", "status", "stage", *factor_columns, *METRICS, "epochs", "stop_reason", "seconds",
               "failure", "trial"]
    return pd.DataFrame(rows, columns=columns), histories


def factor_columns(arms: list[Arm]) -> list[str]:
    """Factor and varied sub-parameter columns, in the order they first appear."""
    cols: dict[str, None] = {}
    for arm in arms:
        for k in arm.values:
            cols.setdefault(k, None)
    return list(cols)


def write_tables(out_dir: Path, table: pd.DataFrame, histories: list[dict[str, Any]],
                 meta: dict[str, Any]) -> None:
    """results.csv (one row per run) and results.json (meta, rows and histories)."""
    table.to_csv(out_dir / "results.csv", index=False, float_format="%.6g")
    by_run = {(h["arm"], h["seed"]): h for h in histories}
    runs = []
    for row in table.to_dict(orient="records"):
        h = by_run.get((row["arm"], row["seed"]), {})
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        runs.append({**clean, "history": h.get("history", []), "config": h.get("config", {})})
    payload = {"study": meta, "runs": runs}
    (out_dir / "results.json").write_text(json.dumps(payload, indent=1, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)
