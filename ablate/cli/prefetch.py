"""Import modules in a background thread while this process waits for others.

``ablate run --jobs N`` waits about a second, with nothing else to do, while its
workers import torch; the libraries it needs next (alembic, Optuna's table
models and SQLAlchemy's set-up of them: 0.2 s of opening a new storage) and at
the end (the report's pandas, scipy, jinja2 and matplotlib, about a second more)
load in that wait instead of on the path to the first result or after the last one.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable


def _configure_mappers() -> None:
    """SQLAlchemy maps Optuna's table classes on their first query (tens of milliseconds)."""
    import sqlalchemy.orm

    sqlalchemy.orm.configure_mappers()


def _optuna_models() -> None:
    from ablate.engine.store.optuna_internals import (
        load_models,
    )  # optuna, sqlalchemy: only when this runs, not at start-up

    load_models()


STORAGE: tuple[str | Callable[[], None], ...] = (
    "alembic.command",
    "alembic.config",
    "alembic.migration",
    "alembic.script",
    "sqlalchemy.dialects.sqlite.pysqlite",
    _optuna_models,
    _configure_mappers,
)
REPORT = ("ablate.report.outputs", "ablate.engine.store.results", "ablate.report", "ablate.report.figures")


def prefetch(*steps: str | Callable[[], None]) -> threading.Thread:
    """Start importing the modules named in ``steps`` (and calling the functions), in
    order; join the thread to wait for them."""

    def load() -> None:
        for step in steps:
            try:
                step() if callable(step) else importlib.import_module(step)
            except Exception:  # done again where it is needed, and its error raised there
                continue

    thread = threading.Thread(target=load, name="ablate-prefetch", daemon=True)
    thread.start()
    return thread
