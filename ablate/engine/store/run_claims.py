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

import sqlalchemy as sa

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


class ClaimStore:
    """Claims of one study's runs in one database."""

    def __init__(self, engine: sa.engine.Engine, study: str, worker: str, grace: float):
        self.engine, self.study, self.worker, self.grace = engine, study, worker, grace
        METADATA.create_all(engine, checkfirst=True)

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
        taken = conn.execute(
            sa.update(CLAIMS)
            .where(self._key(row.run_key), CLAIMS.c.worker == row.worker, CLAIMS.c.heartbeat == row.heartbeat)
            .values(worker=self.worker, heartbeat=now)
        )
        return "takeover" if taken.rowcount == 1 else None

    def stale_trial(self, run_key: str) -> int | None:
        """The trial a dead worker left behind on a run this worker took over."""
        with self.engine.begin() as conn:
            return conn.execute(sa.select(CLAIMS.c.trial_id).where(self._key(run_key))).scalar()

    def set_trial(self, run_key: str, trial_id: int) -> None:
        self.set_trials({run_key: trial_id})

    def set_trials(self, trial_ids: dict[str, int]) -> None:
        """Record the trial each of this worker's runs trains in (for a takeover to close)."""
        with self.engine.begin() as conn:
            for run_key, trial_id in trial_ids.items():
                conn.execute(
                    sa.update(CLAIMS)
                    .where(self._key(run_key), CLAIMS.c.worker == self.worker)
                    .values(trial_id=trial_id)
                )

    def beat(self, run_keys: Iterable[str]) -> None:
        """Tell other workers these runs are alive."""
        keys = list(run_keys)
        if not keys:
            return
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(CLAIMS)
                .where(CLAIMS.c.study == self.study, CLAIMS.c.run_key.in_(keys), CLAIMS.c.worker == self.worker)
                .values(heartbeat=time.time())
            )

    def finish(self, *run_keys: str) -> None:
        """Mark runs done (their outcomes are stored)."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(CLAIMS)
                .where(CLAIMS.c.study == self.study, CLAIMS.c.run_key.in_(run_keys))
                .values(state=DONE, heartbeat=time.time())
            )

    def release(self, run_keys: Iterable[str]) -> None:
        """Give runs back at once (an interrupted worker): another worker may take them."""
        keys = list(run_keys)
        if keys:
            with self.engine.begin() as conn:
                conn.execute(sa.delete(CLAIMS).where(CLAIMS.c.study == self.study, CLAIMS.c.run_key.in_(keys)))

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
