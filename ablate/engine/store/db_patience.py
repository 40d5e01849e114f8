"""One layer for storage calls: what is transient (a database restarting, a
connection reset, SQLite busy, a serialization failure) is retried with capped
exponential backoff, with one line when the database goes away and one when it
is back; after ``--db-patience`` of failure it is a user error. A full disk or
a read-only storage is a user error at once, naming the storage and what to free.

Every storage call goes through one process-wide ``Patience`` (``PATIENCE``):
an outage is one outage for the training loop and the heartbeat thread alike,
printed once and timed from its start. Torch- and Optuna-free."""

from __future__ import annotations

import errno
import functools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from ablate.engine.store.storage_url import for_people, scrub, sqlite_path
from ablate.errors import UserError

DEFAULT_PATIENCE = 600.0  # seconds: a failover or a maintenance restart takes seconds to minutes
FIRST_WAIT, MAX_WAIT = 0.25, 5.0  # backoff between tries: doubled each time, at most MAX_WAIT

# Words of the drivers' messages (psycopg, psycopg2, sqlite3) for a server that is
# away for now, and for a disk that cannot take more.
TRANSIENT_WORDS = (
    "connection refused",
    "connection reset",
    "server closed the connection",
    "terminating connection",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
    "could not connect to server",
    "no connection to the server",
    "connection is closed",
    "connection already closed",
    "consuming input failed",
    "could not receive data",
    "could not send data",
    "ssl connection has been closed",
    "broken pipe",
    "could not serialize access",
    "deadlock detected",
    "database is locked",
    "database table is locked",
    "timeout expired",
)
TRANSIENT_CODES = ("08", "57P01", "57P02", "57P03", "40001", "40P01")  # SQLSTATE classes and codes
FULL_WORDS = (
    "database or disk is full",
    "no space left on device",
    "could not extend file",
    "disk quota exceeded",
    "disk i/o error",  # SQLite, where its journal cannot be written on a full disk
)
READ_ONLY_WORDS = ("readonly database", "read-only file system", "read-only transaction")
FULL_CODES = ("53100", "25006")

T = TypeVar("T")


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    """The exception and those it was raised from (Optuna wraps the driver's)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        orig = getattr(exc, "orig", None)  # SQLAlchemy's wrapper holds the driver's error
        exc = exc.__cause__ or exc.__context__ or (orig if isinstance(orig, BaseException) else None)


def _codes(exc: BaseException) -> Iterator[str]:
    for e in _chain(exc):
        for name in ("sqlstate", "pgcode"):  # psycopg 3, psycopg2
            code = getattr(e, name, None) or getattr(getattr(e, "orig", None), name, None)
            if isinstance(code, str):
                yield code


def _text(exc: BaseException) -> str:
    return " ".join(str(e).lower() for e in _chain(exc))


def is_transient(exc: BaseException) -> bool:
    """A database that is away for now: retrying may succeed."""
    if isinstance(exc, UserError) or disk_problem(exc):
        return False
    if any(getattr(e, "connection_invalidated", False) for e in _chain(exc)):  # SQLAlchemy saw it drop
        return True
    if any(code.startswith(TRANSIENT_CODES) for code in _codes(exc)):
        return True
    text = _text(exc)
    return any(words in text for words in TRANSIENT_WORDS)


def disk_problem(exc: BaseException) -> str | None:
    """'full' or 'read-only' where the storage cannot take a write, else None."""
    if isinstance(exc, UserError):
        return None
    text = _text(exc)
    codes = list(_codes(exc))
    if "53100" in codes or any(words in text for words in FULL_WORDS):
        return "full"
    if "25006" in codes or any(words in text for words in READ_ONLY_WORDS):
        return "read-only"
    return None


def first_line(exc: BaseException) -> str:
    """The driver's own first line (under Optuna's and SQLAlchemy's wrappers)."""
    chain = [e for e in _chain(exc) if str(e).strip()] or [exc]
    drivers = [e for e in chain if type(e).__module__.split(".")[0] in ("psycopg", "psycopg2", "sqlite3")]
    inner = (drivers or chain)[-1]
    text = str(inner).strip().splitlines()
    return f"{type(inner).__name__}: {text[0] if text else ''}"


def driver_line(exc: BaseException, url: str) -> str:
    """``first_line``, any password of the URL in it hidden."""
    return scrub(first_line(exc), url)


def duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def parse_duration(text: str) -> float:
    """Seconds from '600', '90s', '10m' or '1h' (for --db-patience)."""
    value = text.strip().lower()
    scale = {"s": 1.0, "m": 60.0, "h": 3600.0}.get(value[-1:])
    number = value[:-1] if scale else value
    try:
        seconds = float(number) * (scale or 1.0)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise ValueError(f"{text!r}: expected a duration such as 600, 90s, 10m or 1h")
    return seconds


def cannot_write(url: str, why: str, detail: str) -> UserError:
    """A full or read-only storage: what happened, and what to free."""
    path = sqlite_path(url)
    folder = path.parent if path is not None else None  # what to free
    where = f"space in {folder} (`df -h {folder}` shows it)" if folder else "space on the database server's disk"
    fix = where if why == "full" else (f"a writable {folder}" if folder else "a database server that accepts writes")
    return UserError(
        f"cannot write to the storage {for_people(url)}: "
        + ("the disk is full" if why == "full" else "it is read-only")
        + f" ({detail})",
        key="storage",
        expected=f"{fix}; the runs stored so far are kept: run the same command again and only the missing runs train",
    )


def cannot_write_folder(folder: Path, exc: OSError) -> UserError | None:
    """A report or file that a full or read-only disk would not take, else None."""
    if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        return None
    why = "it is read-only" if exc.errno == errno.EROFS else "the disk is full"
    return UserError(
        f"cannot write to {folder}: {why} ({exc.strerror})",
        key="--out",
        expected=f"space in {folder} (`df -h {folder}`); the runs are stored: `ablate report` writes the report",
    )


class Patience:
    """Retries storage calls through an outage, and says when it starts and ends."""

    def __init__(self, seconds: float = DEFAULT_PATIENCE, url: str = "", log: Callable[[str], None] | None = None):
        self.seconds, self.url = seconds, url
        self.log = log or (lambda line: print(line, flush=True))
        self.down_since: float | None = None  # monotonic start of the outage in progress
        self.back_at: float | None = None  # monotonic end of the last outage
        self.given_up = False  # after giving up (or a full disk), cleanup tries each call once
        self.ping: Callable[[], object] | None = None  # a round trip to the database (``watch``)
        self._lock = threading.Lock()

    def watch(self, engine: Any) -> None:
        """Say "back" only after a round trip on ``engine`` (a SQLAlchemy engine): some calls
        succeed without the database (Optuna's cache answers them)."""

        def ping() -> None:
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")

        self.ping = ping

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)``, tried again while the failure is transient."""
        wait = FIRST_WAIT
        while True:
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                why = disk_problem(exc)
                if why is not None:
                    self.given_up = True
                    raise cannot_write(self.url, why, driver_line(exc, self.url)) from None
                if not is_transient(exc):
                    raise
                if self.given_up:  # cleanup after giving up: one try each, the same error
                    raise self.gave_up(exc) from None
                if self.went_away(exc) > self.seconds:
                    self.given_up = True
                    raise self.gave_up(exc) from None
                time.sleep(wait)
                wait = min(wait * 2, MAX_WAIT)
                continue
            self.came_back()
            return result

    def attempt(self, fn: Callable[..., T], *args: Any) -> T | None:
        """One try, for a background thread (heartbeats): an outage is noted, never raised."""
        try:
            result = fn(*args)
        except Exception as exc:
            if is_transient(exc):
                self.went_away(exc)
            return None
        self.came_back()
        return result

    def went_away(self, exc: BaseException) -> float:
        """Note a transient failure (one line for the outage); seconds since it began."""
        with self._lock:
            now = time.monotonic()
            if self.down_since is None:
                self.down_since = now
                self.log(
                    f"storage {for_people(self.url)} went away ({driver_line(exc, self.url)}); "
                    f"retrying for up to {duration(self.seconds)} (--db-patience)"
                )
            return now - self.down_since

    def came_back(self) -> None:
        if self.down_since is None:  # the usual case: no lock taken
            return
        with self._lock:
            if self.down_since is not None and self._answers():
                self.back_at = time.monotonic()
                self.log(f"storage {for_people(self.url)} is back after {self.back_at - self.down_since:.1f}s")
                self.down_since = None

    def recently_back(self, seconds: float) -> bool:
        """Whether an outage ended less than ``seconds`` ago (or is going on): other
        workers could not send heartbeats through it either."""
        if self.down_since is not None:
            return True
        return self.back_at is not None and time.monotonic() - self.back_at < seconds

    def _answers(self) -> bool:
        try:
            if self.ping is not None:
                self.ping()
        except Exception:
            return False
        return True

    def gave_up(self, exc: BaseException) -> UserError:
        return UserError(
            f"the storage {for_people(self.url)} has been unreachable for {duration(self.seconds)} "
            f"({driver_line(exc, self.url)})",
            key="--db-patience",
            expected="a reachable storage: finished runs are stored, so run the same command again once it is "
            "back (or wait longer with --db-patience)",
        )


PATIENCE = Patience()


def configure(seconds: float, url: str, log: Callable[[str], None] | None = None) -> Patience:
    """This process's patience (the command line sets it once it knows the storage)."""
    global PATIENCE
    PATIENCE = Patience(seconds, url, log)
    return PATIENCE


def retried(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` with every call made through this process's patience."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> T:
        return PATIENCE.call(fn, *args, **kwargs)

    return call


def db_patience_option(parser: Any) -> None:
    """``--db-patience``: how long a command waits for a storage that went away."""

    def seconds(text: str) -> float:
        import argparse

        try:
            return parse_duration(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parser.add_argument(
        "--db-patience",
        type=seconds,
        default=DEFAULT_PATIENCE,
        metavar="DURATION",
        help="how long to wait for a storage that went away (restart, failover) before giving up "
        "(default 10m; e.g. 90s, 30m, 1h, 0 to give up at once)",
    )
