"""A study in an SQLite storage, read for a report with the standard library's sqlite3:
no SQLAlchemy, no ORM and no Optuna storage object, which together cost a quarter of a
second of a 1,000-run report's two.

It reads Optuna's RDB tables directly, so it knows Optuna's schema (table and column
names, how a value, an infinity and a state are stored): with ``optuna_internals``, the
only module that knows anything of Optuna's insides, and
``tests/engine/store/test_optuna_schema.py`` fails loudly where Optuna changes what
is read here. A file whose tables are not the ones read here (an older or a newer
schema), or that will not open read-only, gives None, and the caller opens it through
Optuna as before.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Collection, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import optuna
from optuna.trial import TrialState

from ablate.engine.store.db_patience import retried
from ablate.engine.store.optuna_internals import StoredTrial, study_user_attrs

# The columns read here, by table (as Optuna's models name them); a trial table's
# row id first, then its trial id.
TABLES = {
    "studies": ("study_id", "study_name"),
    "study_user_attributes": ("study_user_attribute_id", "study_id", "key", "value_json"),
    "trials": ("trial_id", "number", "study_id", "state"),
    "trial_values": ("trial_value_id", "trial_id", "objective", "value", "value_type"),
    "trial_user_attributes": ("trial_user_attribute_id", "trial_id", "key", "value_json"),
    "trial_intermediate_values": (
        "trial_intermediate_value_id",
        "trial_id",
        "step",
        "intermediate_value",
        "intermediate_value_type",
    ),
}
# A value's type column, for the values stored as NULL (Optuna's TrialValueType and
# TrialIntermediateValueType, stored by their names); "FINITE" is the value itself.
NOT_FINITE = {"INF_POS": math.inf, "INF_NEG": -math.inf, "NAN": math.nan}
BUSY_SECONDS = 30.0  # a writer's transaction holds the file this long at most, in practice


@dataclass
class SqliteStudy:
    """One study of an SQLite file, named and numbered as Optuna stores it. Its user
    attributes (the record and the plan, megabytes at 10,000 runs) are read once per
    open, however often the command asks."""

    path: Path
    study_name: str
    study_id: int
    attrs: dict[str, Any] | None = field(default=None, repr=False, compare=False)


ReportStudy = optuna.Study | SqliteStudy


def study_names(path: Path) -> list[str] | None:
    """The studies the file holds; None where it is not a file read here (the caller
    then opens it through Optuna, whose error or answer is the one given)."""
    try:
        with _reading(path) as db:
            if not _has_schema(db):
                return None
            return [name for (name,) in db.execute("SELECT study_name FROM studies ORDER BY study_id")]
    except sqlite3.Error:
        return None


def open_study(path: Path, name: str) -> SqliteStudy:
    """The study ``name`` (one of ``study_names(path)``)."""
    with _reading(path) as db:
        (study_id,) = db.execute("SELECT study_id FROM studies WHERE study_name = ?", (name,)).fetchone()
    return SqliteStudy(path, name, int(study_id))


def user_attrs(study: ReportStudy) -> dict[str, Any]:
    """The study's user attributes, from either kind of study."""
    if not isinstance(study, SqliteStudy):
        return study_user_attrs(study)
    if study.attrs is None:
        study.attrs = _study_attrs(study)
    return dict(study.attrs)


@retried
def _study_attrs(study: SqliteStudy) -> dict[str, Any]:
    with _reading(study.path) as db:
        rows = db.execute(
            "SELECT key, value_json FROM study_user_attributes WHERE study_id = ? ORDER BY study_user_attribute_id",
            (study.study_id,),
        ).fetchall()
    return {key: json.loads(text) for key, text in rows}


@retried
def read_trials(
    study: SqliteStudy, attr_keys: Collection[str] | None = None, epochs: bool = False
) -> list[StoredTrial]:
    """Every trial of the study, by number, as ``optuna_internals.read_trials`` gives it:
    state, objective values, the user attributes named in ``attr_keys`` (all for None)
    and, with ``epochs``, the epoch values. One read transaction, four queries."""
    with _reading(study.path) as db:
        db.execute("BEGIN")  # one snapshot: a run finishing meanwhile is wholly in or wholly out
        trials = {
            tid: StoredTrial(tid, number, TrialState[state])
            for tid, number, state in db.execute(
                "SELECT trial_id, number, state FROM trials WHERE study_id = ? ORDER BY number", (study.study_id,)
            )
        }
        values: dict[int, dict[int, float]] = {}
        for tid, objective, value, kind in _of_study(db, "trial_values", study):
            values.setdefault(tid, {})[objective] = _value(value, kind)
        keys = sorted(attr_keys) if attr_keys is not None else None
        for tid, key, text in _of_study(db, "trial_user_attributes", study, keys):
            trials[tid].user_attrs[key] = json.loads(text)
        if epochs:
            for tid, step, value, kind in _of_study(db, "trial_intermediate_values", study):
                trials[tid].intermediate_values[step] = _value(value, kind)
    for tid, by_objective in values.items():
        trials[tid].values = [by_objective[k] for k in sorted(by_objective)]
    return list(trials.values())


def _of_study(
    db: sqlite3.Connection, table: str, study: SqliteStudy, keys: list[str] | None = None
) -> Iterator[tuple[Any, ...]]:
    """(trial id, then TABLES' columns after it) of a trial table's rows for the study's
    trials, in the order they were written (its first column: the row id)."""
    first, _, *rest = TABLES[table]
    where = f" AND x.key IN ({', '.join('?' * len(keys))})" if keys is not None else ""
    yield from db.execute(
        f"SELECT x.trial_id, {', '.join('x.' + c for c in rest)} FROM {table} x "
        f"JOIN trials t ON t.trial_id = x.trial_id WHERE t.study_id = ?{where} ORDER BY x.{first}",
        (study.study_id, *(keys or ())),
    )


def _value(stored: float | None, kind: str) -> float:
    """A stored value as Optuna reads it back (its ``stored_repr_to_value``)."""
    if kind == "FINITE" and stored is not None:
        return float(stored)
    if kind in NOT_FINITE and stored is None:
        return NOT_FINITE[kind]
    raise ValueError(f"a stored value Optuna would not have written: {stored!r} of type {kind!r}")


def _has_schema(db: sqlite3.Connection) -> bool:
    for table, columns in TABLES.items():
        there = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if not there.issuperset(columns):
            return False
    return True


@contextmanager
def _reading(path: Path) -> Iterator[sqlite3.Connection]:
    """The file opened read-only (never created, never written), closed on the way out."""
    uri = f"file:{quote(str(Path(path).resolve()))}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, timeout=BUSY_SECONDS, isolation_level=None)) as db:
        yield db
