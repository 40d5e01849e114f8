"""Import modules in a background thread while this process waits for others.

``ablate run --jobs N`` waits about a second, with nothing else to do, while its
workers import torch; the libraries it needs next (alembic, to set the storage
up) and at the end (the report's pandas, scipy, jinja2 and matplotlib, about a
second more) load in that wait instead of on the path to the first result or
after the last one.
"""

from __future__ import annotations

import importlib
import threading

STORAGE = ("alembic.command", "alembic.config", "alembic.migration", "alembic.script")
REPORT = ("ablate.outputs", "ablate.results", "ablate.report", "ablate.report.figures")


def prefetch(*modules: str) -> threading.Thread:
    """Start importing ``modules`` in order; join the thread to wait for them."""

    def load() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # imported again where it is needed, and its error raised there
                continue

    thread = threading.Thread(target=load, name="ablate-prefetch", daemon=True)
    thread.start()
    return thread
