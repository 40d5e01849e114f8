"""Who trains which run: one row per run key in a small table beside Optuna's,
so any number of workers on any number of machines train every run once.

Claiming is an INSERT against the run key's primary key, and taking over the
run of a worker whose heartbeat stopped is a compare-and-swap UPDATE: both are
atomic on PostgreSQL (a lost INSERT race is a unique-key violation, read as
"taken"), and on SQLite because every transaction begins
IMMEDIATE (it takes the write lock first, so two processes never both read
"free" and both write "mine"). Optuna's own queue is not used for claims:
SQLite cannot arbitrate it (optuna/optuna#4002).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from ablate.engine.store import db_patience
from ablate.engine.store.db_patience import retried

RUNNING, DONE = "running", "done"

METADATA = sa.MetaData()
CLAIMS = sa.Table(
    "ablate_claims",
    METADATA,
    sa.Column("study", sa.String(512), primary_key=True),
    sa.Column("run_key", sa.String(64), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("worker", sa.String(256), nullable=False),
    sa.Column("heartbeat", sa.Float, nullable=False),
    sa.Column("trial_id", sa.Integer, nullable=True),
)


@retried
def create_table(engine: sa.engine.Engine) -> None:
    """The claims table, made once: workers starting together on a new PostgreSQL
    database may both find it missing; the loser's CREATE fails on the catalog's key."""
    try:
        METADATA.create_all(engine, checkfirst=True)
    except (sa.exc.IntegrityError, sa.exc.ProgrammingError):
        METADATA.create_all(engine, checkfirst=True)  # made meanwhile: now found


class ClaimStore:
    """Claims of one study's runs in one database."""

    def __init__(self, engine: sa.engine.Engine, study: str, worker: str, grace: float):
        self.engine, self.study, self.worker, self.grace = engine, study, worker, grace
        create_table(engine)

    def _key(self, run_key: str) -> sa.ColumnElement[bool]:
        return sa.and_(CLAIMS.c.study == self.study, CLAIMS.c.run_key == run_key)

    def claim(self, run_key: str) -> str | None:
        """Take a run nobody has ("new"), or one whose worker stopped sending
        heartbeats ("takeover"); None if it is done or alive elsewhere."""
        try:
            return self._claim(run_key, time.time())
        except sa.exc.IntegrityError:
            # PostgreSQL reads at READ COMMITTED: another worker inserted this
            # key between our read and our write, so the run is theirs.
            return None

    def _claim(self, run_key: str, now: float) -> str | None:
        return self._claim_in(run_key, now=now)[run_key]

    def claim_many(self, run_keys: list[str]) -> dict[str, str | None]:
        """``claim`` for each key, in one transaction (one by one if another worker
        inserts one of them meanwhile, so each race is lost or won alone)."""
        try:
            return self._claim_in(*run_keys, now=time.time())
        except sa.exc.IntegrityError:
            return {key: self.claim(key) for key in run_keys}

    @retried
    def _claim_in(self, *run_keys: str, now: float) -> dict[str, str | None]:
        with self.engine.begin() as conn:
            found = conn.execute(
                sa.select(CLAIMS).where(CLAIMS.c.study == self.study, CLAIMS.c.run_key.in_(run_keys))
            ).all()
            rows = {r.run_key: r for r in found}
            new = [k for k in run_keys if k not in rows]
            if new:
                values = [
                    dict(study=self.study, run_key=k, state=RUNNING, worker=self.worker, heartbeat=now) for k in new
                ]
                conn.execute(sa.insert(CLAIMS), values)
            out: dict[str, str | None] = dict.fromkeys(new, "new")
            for key, row in rows.items():
                out[key] = self._take_over(conn, row, now)
            return {k: out[k] for k in run_keys}

    def _take_over(self, conn: sa.Connection, row: sa.Row, now: float) -> str | None:
        """Take a run whose worker stopped sending heartbeats (compare and swap)."""
        if row.state != RUNNING or now - row.heartbeat < self.grace:
            return None
        if db_patience.PATIENCE.recently_back(self.grace):  # its worker could not beat through the outage
            return None
        taken = conn.execute(
            sa.update(CLAIMS)
            .where(self._key(row.run_key), CLAIMS.c.worker == row.worker, CLAIMS.c.heartbeat == row.heartbeat)
            .values(worker=self.worker, heartbeat=now)
        )
        return "takeover" if taken.rowcount == 1 else None

    @retried
    def stale_trial(self, run_key: str) -> int | None:
        """The trial a dead worker left behind on a run this worker took over."""
        with self.engine.begin() as conn:
            return conn.execute(sa.select(CLAIMS.c.trial_id).where(self._key(run_key))).scalar()

    def set_trial(self, run_key: str, trial_id: int) -> None:
        self.set_trials({run_key: trial_id})

    @retried
    def set_trials(self, trial_ids: dict[str, int]) -> None:
        """Record the trial each of this worker's runs trains in (for a takeover to close)."""
        with self.engine.begin() as conn:
            for run_key, trial_id in trial_ids.items():
                conn.execute(
                    sa.update(CLAIMS)
                    .where(self._key(run_key), CLAIMS.c.worker == self.worker)
                    .values(trial_id=trial_id)
                )

    def beat(self, run_keys: Iterable[str]) -> set[str]:
        """Tell other workers these runs are alive; return those no longer this
        worker's (taken over while it was stopped, or cut off past the grace).
        Not retried: the heartbeat thread tries again at its next beat."""
        keys = list(run_keys)
        if not keys:
            return set()
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(CLAIMS)
                .where(CLAIMS.c.study == self.study, CLAIMS.c.run_key.in_(keys), CLAIMS.c.worker == self.worker)
                .values(heartbeat=time.time())
            )
            return set(keys) - self.mine(conn, keys)

    def mine(self, conn: sa.Connection | Any, run_keys: list[str], lock: bool = False) -> set[str]:
        """Which of these runs this worker holds now, read on ``conn`` (a connection or a
        session: in the transaction that stores their outcomes, ``lock`` holds the rows)."""
        query = sa.select(CLAIMS.c.run_key).where(
            CLAIMS.c.study == self.study,
            CLAIMS.c.run_key.in_(run_keys),
            CLAIMS.c.worker == self.worker,
            CLAIMS.c.state == RUNNING,
        )
        return set(conn.execute(query.with_for_update() if lock else query).scalars())

    @retried
    def finish(self, *run_keys: str) -> None:
        """Mark this worker's runs done (their outcomes are stored)."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(CLAIMS)
                .where(CLAIMS.c.study == self.study, CLAIMS.c.run_key.in_(run_keys), CLAIMS.c.worker == self.worker)
                .values(state=DONE, heartbeat=time.time())
            )

    @retried
    def release(self, run_keys: Iterable[str], anyone: bool = False) -> None:
        """Give this worker's runs back at once (an interrupted worker): another worker
        may take them. ``anyone``: whoever holds them (finished runs to train again)."""
        keys = list(run_keys)
        if keys:
            whose = [] if anyone else [CLAIMS.c.worker == self.worker]
            with self.engine.begin() as conn:
                conn.execute(sa.delete(CLAIMS).where(CLAIMS.c.study == self.study, CLAIMS.c.run_key.in_(keys), *whose))

    @retried
    def states(self) -> dict[str, tuple[str, float, str]]:
        """run key -> (state, heartbeat, worker) for this study."""
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(CLAIMS).where(CLAIMS.c.study == self.study)).all()
        return {r.run_key: (r.state, r.heartbeat, r.worker) for r in rows}

    def alive_elsewhere(self, run_keys: Iterable[str]) -> int:
        """How many of these runs other workers are training now (heartbeat within the grace)."""
        now = time.time()
        states = self.states()
        return sum(
            1
            for k in run_keys
            if k in states
            and states[k][0] == RUNNING
            and now - states[k][1] < self.grace
            and states[k][2] != self.worker
        )
