"""The retry layer for storage calls: what is transient is retried with one line
when the database goes away and one when it is back, a long outage is a user
error naming --db-patience, a full or read-only disk is one naming the folder."""

from __future__ import annotations

import sqlite3
import time

import pytest
import sqlalchemy as sa

from ablate.cli import main
from ablate.engine.store import db_patience
from ablate.engine.store.db_patience import Patience, disk_problem, is_transient, parse_duration
from ablate.engine.store.run_claims import ClaimStore
from ablate.engine.store.storage import begin_immediate
from ablate.errors import UserError


def driver_error(message: str) -> sa.exc.OperationalError:
    """A driver's error as SQLAlchemy raises it (the driver's under its own)."""
    return sa.exc.OperationalError("SELECT 1", {}, sqlite3.OperationalError(message))


@pytest.mark.parametrize(
    "message",
    [
        "connection failed: FATAL:  the database system is starting up",
        'connection to server at "127.0.0.1", port 5432 failed: Connection refused',
        "terminating connection due to administrator command",
        "server closed the connection unexpectedly",
        "could not serialize access due to concurrent update",
        "database is locked",
    ],
)
def test_what_a_restart_or_a_busy_database_says_is_transient(message):
    assert is_transient(driver_error(message)) and disk_problem(driver_error(message)) is None


@pytest.mark.parametrize(
    "message, why",
    [
        ("database or disk is full", "full"),
        ('could not extend file "base/1/2": No space left on device', "full"),
        ("attempt to write a readonly database", "read-only"),
    ],
)
def test_a_full_or_read_only_disk_is_no_outage(message, why):
    assert disk_problem(driver_error(message)) == why and not is_transient(driver_error(message))


def test_other_errors_are_neither():
    for exc in (driver_error("no such table: trials"), ValueError("connection refused?"), UserError("x")):
        assert not disk_problem(exc)
    assert not is_transient(driver_error("no such table: trials")) and not is_transient(UserError("refused"))


def flaky(failures: int, message: str = "the database system is starting up"):
    calls = []

    def call() -> str:
        calls.append(time.monotonic())
        if len(calls) <= failures:
            raise driver_error(message)
        return "stored"

    return call, calls


def test_an_outage_is_retried_and_shown_as_two_lines():
    lines: list[str] = []
    patience = Patience(600, "postgresql://u@db/x", lines.append)
    call, calls = flaky(3)
    assert patience.call(call) == "stored"
    assert len(calls) == 4 and calls[3] - calls[0] >= 0.25 + 0.5 + 1.0 - 0.05  # backoff doubles
    assert len(lines) == 2
    assert lines[0].startswith("storage postgresql://u@db/x went away (OperationalError: the database system is")
    assert "retrying for up to 10 min (--db-patience)" in lines[0]
    assert lines[1].startswith("storage postgresql://u@db/x is back after ")
    assert patience.call(lambda: 1) == 1 and len(lines) == 2  # no outage, no line


def test_a_heartbeat_notes_an_outage_without_waiting_and_back_needs_a_round_trip():
    lines: list[str] = []
    patience = Patience(600, "u", lines.append)
    answers = [False]

    def ping() -> None:
        if not answers[0]:
            raise driver_error("connection refused")

    patience.ping = ping
    call, _ = flaky(1, "connection refused")
    assert patience.attempt(call) is None and len(lines) == 1
    assert patience.attempt(lambda: "cached") == "cached" and len(lines) == 1  # answered without the database
    answers[0] = True
    patience.attempt(lambda: "beat")
    assert len(lines) == 2 and "is back after" in lines[1]


def test_an_outage_longer_than_the_patience_is_a_user_error():
    patience = Patience(0.6, "postgresql://u@db/x", lambda line: None)
    call, calls = flaky(10**6, "connection refused")
    started = time.monotonic()
    with pytest.raises(UserError) as caught:
        patience.call(call)
    assert 0.6 <= time.monotonic() - started < 3.0
    assert caught.value.key == "--db-patience" and "unreachable for 0.6 s" in str(caught.value)
    assert "run the same command again" in str(caught.value)
    tries = len(calls)
    with pytest.raises(UserError):  # given up: cleanup calls are tried once
        patience.call(call)
    assert len(calls) == tries + 1


def test_a_full_disk_names_the_folder_to_free(tmp_path):
    patience = Patience(600, f"sqlite:///{tmp_path}/out/study.db", lambda line: None)
    call, _ = flaky(1, "database or disk is full")
    with pytest.raises(UserError) as caught:
        patience.call(call)
    text = str(caught.value)
    assert "the disk is full" in text and f"space in {tmp_path}/out" in text and "only the missing runs train" in text


def test_db_patience_takes_durations_and_refuses_the_rest(capsys):
    assert [parse_duration(t) for t in ("600", "90s", "10m", "1h", "0")] == [600, 90, 600, 3600, 0]
    with pytest.raises(SystemExit) as exited:
        main(["worker", "study.toml", "--storage", "sqlite:///x.db", "--db-patience", "soon"])
    assert exited.value.code == 2 and "expected a duration such as 600, 90s, 10m or 1h" in capsys.readouterr().err
    assert db_patience.DEFAULT_PATIENCE == 600


def test_a_beat_names_the_runs_another_worker_took_over(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'claims.db'}")
    begin_immediate(engine)
    mine = ClaimStore(engine, "s", "a", grace=0.2)
    other = ClaimStore(engine, "s", "b", grace=0.2)
    assert mine.claim_many(["kept", "taken"]) == {"kept": "new", "taken": "new"}
    time.sleep(0.3)  # this worker was stopped past the grace
    assert other.claim("taken") == "takeover"
    assert mine.beat(["kept", "taken"]) == {"taken"}
    assert other.claim("kept") is None  # the beat landed: still this worker's
    mine.release(["kept", "taken"])  # gives back its own only
    assert set(mine.states()) == {"taken"}


def test_after_an_outage_no_run_is_taken_over_until_its_worker_could_beat_again(tmp_path, monkeypatch):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'claims.db'}")
    begin_immediate(engine)
    first = ClaimStore(engine, "s", "a", grace=0.3)
    second = ClaimStore(engine, "s", "b", grace=0.3)
    assert first.claim("k") == "new"
    monkeypatch.setattr(db_patience, "PATIENCE", Patience(600, "u", lambda line: None))
    call, _ = flaky(1, "connection refused")
    db_patience.PATIENCE.call(call)  # an outage seen by the second worker, now over
    time.sleep(0.2)
    assert second.claim("k") is None  # the first's heartbeat is stale, but it could not beat
    time.sleep(0.35)
    assert second.claim("k") == "takeover"  # a grace after the outage: it had its chance
