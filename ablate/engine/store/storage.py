"""Optuna storage and study set-up: where trials live, which sampler and
pruner a design uses. Separate from the engine so reports and commands that
only read never import the training code."""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import optuna
import sqlalchemy as sa

from ablate.engine.store import optuna_internals
from ablate.engine.store.retrying_storage import retrying
from ablate.engine.store.storage_url import for_people, scrub, sqlite_path, sqlite_url
from ablate.errors import UserError

if TYPE_CHECKING:  # annotations only: `ablate report` opens storage without torch
    from ablate.study.config import StudyConfig

OBJECTIVE = "val_accuracy"
ADVISORY_KEY = 0x61626C61  # "abla": the lock ablate's processes take to set up a database


def default_storage(out_dir: Path) -> str:
    return sqlite_url(out_dir / "study.db")


def normalise_url(url: str) -> str:
    """postgresql:// with only psycopg 3 installed means postgresql+psycopg://."""
    if url.startswith(("postgresql://", "postgres://")):
        rest = url.split("://", 1)[1]
        if importlib.util.find_spec("psycopg2") is None:
            if importlib.util.find_spec("psycopg") is None:
                raise UserError(
                    "no PostgreSQL driver is installed",
                    key="--storage",
                    expected='pip install "ablate[postgres]" (it brings psycopg)',
                )
            return "postgresql+psycopg://" + rest
        return "postgresql://" + rest
    return url


def _check_sqlite_file(path: Path) -> None:
    """A file that is not an SQLite database is named as such (never overwritten)."""
    if path.exists() and path.stat().st_size > 0:
        with open(path, "rb") as f:
            head = f.read(16)
        if head != b"SQLite format 3\x00":
            raise UserError(
                f"{path} is not an SQLite database (corrupted, or another kind of file)",
                key="--storage",
                expected="the study.db that ablate wrote; move this file away or "
                "choose another --out folder (nothing was changed)",
            )
    if not path.parent.is_dir() or not os.access(path.parent, os.W_OK):
        # --out is checked (and made) first, so here the folder is one that --storage names
        why = "does not exist" if not path.parent.is_dir() else "is not writable"
        raise UserError(
            f"cannot write the database {path}: the folder {path.parent} {why}",
            key="--storage",
            expected="sqlite:///PATH in a folder you can write",
        )


@contextlib.contextmanager
def init_lock(url: str) -> Iterator[None]:
    """One process at a time creates tables and studies (optuna/optuna#4621):
    a file lock beside an SQLite file, an advisory lock on PostgreSQL."""
    path = sqlite_path(url)
    if path is not None:
        with open(str(path) + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return
    if url.startswith("postgresql"):
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_KEY})
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
                conn.commit()
        engine.dispose()
        return
    yield


def begin_immediate(engine: sa.engine.Engine) -> None:
    """Every SQLite transaction takes the write lock first: no read-then-upgrade
    deadlocks ("database is locked") between processes, and atomic claims."""

    @sa.event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _immediate(conn: sa.engine.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """The study's storage, checked before any training: a missing driver, an
    unreachable server or a file that is not a database is a user error."""
    url = normalise_url(url)
    path = sqlite_path(url)
    if path is not None:
        _check_sqlite_file(path)
    kwargs: dict[str, Any] = (
        {"connect_args": {"timeout": 120}} if path else {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    )
    try:
        with init_lock(url):
            storage = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    except UserError:
        raise
    except Exception as exc:
        raise cannot_open(url, exc, key="--storage") from None
    if path is not None:
        begin_immediate(storage.engine)
    return storage


def open_for_reading(url: str) -> optuna.storages.RDBStorage:
    """A storage that ``ablate run`` set up, opened to read: no table creation and
    no schema check, so alembic (0.3 s of imports) is never loaded. Where Optuna
    has moved its internals, or the quick open fails (an older schema, say),
    Optuna's own full open is tried, so its error is the one reported."""
    quick = optuna_internals.open_without_migrations(url)
    if quick is not None:
        return quick
    return optuna.storages.RDBStorage(url, skip_table_creation=True)


def cannot_open(url: str, exc: Exception, key: str) -> UserError:
    """The error for a storage that would not open: its URL and the driver's first line
    (under what Optuna wraps it in: "An exception is raised during the commit" for a
    refused password), never the password."""
    while exc.__cause__ or exc.__context__:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return UserError(
        scrub(f"cannot open storage {for_people(url)!r}: {type(exc).__name__}: {exc}".splitlines()[0], url),
        key=key,
        expected="sqlite:///PATH or postgresql://USER@HOST/DB, reachable from this machine",
    )


def optuna_study_name(config: StudyConfig) -> str:
    """Two objectives need a study of their own: Optuna fixes directions per study."""
    return f"{config.name}-pareto" if config.design.kind == "pareto" else config.name


def make_sampler(config: StudyConfig) -> optuna.samplers.BaseSampler:
    d = config.design
    if d.sampler == "tpe":  # Optuna 5 changed defaults: say them
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=d.search_seed, multivariate=True, group=True, constant_liar=True)
    if d.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=d.search_seed)
    # enumerated designs enqueue every trial; the sampler is never consulted for them
    return optuna.samplers.RandomSampler(seed=d.search_seed)


def make_pruner(config: StudyConfig) -> optuna.pruners.BasePruner:
    if config.design.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)
    if config.design.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()


def metric_names(config: StudyConfig) -> list[str]:
    return [OBJECTIVE, "train_val_gap"] if config.design.kind == "pareto" else [OBJECTIVE]


def open_study(config: StudyConfig, storage: optuna.storages.RDBStorage) -> optuna.Study:
    """The study in its storage, created on first use, its objectives named."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our own progress lines say what happened
    directions: list[Literal["minimize", "maximize"]] = (
        ["maximize", "minimize"] if config.design.kind == "pareto" else ["maximize"]
    )
    url = storage.engine.url.render_as_string(hide_password=False)
    try:
        with init_lock(url):
            study = optuna.create_study(
                storage=retrying(storage),  # every call rides through a database restart
                study_name=optuna_study_name(config),
                directions=directions,
                sampler=make_sampler(config),
                pruner=make_pruner(config),
                load_if_exists=True,
            )
    except Exception as exc:
        why = scrub(f"{type(exc).__name__}: {exc}", url)
        raise UserError(f"cannot open the study in its storage: {why}", key="--storage") from None
    if study.metric_names != metric_names(config):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(metric_names(config))
    return study
