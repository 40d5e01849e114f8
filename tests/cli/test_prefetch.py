"""ablate.cli.prefetch: what `ablate run --jobs N` loads while its workers import torch."""

from __future__ import annotations

import subprocess
import sys

from ablate.cli.prefetch import REPORT, STORAGE, prefetch


def test_prefetch_takes_its_steps_in_order_past_one_that_fails():
    done: list[str] = []

    def broken() -> None:
        done.append("broken")
        raise RuntimeError("a step that fails")

    thread = prefetch(
        lambda: done.append("first"), "no_such_module_anywhere", broken, "json", lambda: done.append("last")
    )
    thread.join(timeout=30)
    assert not thread.is_alive() and done == ["first", "broken", "last"]
    assert "json" in sys.modules


def test_every_prefetch_step_works_with_the_installed_libraries():
    """A step that fails is skipped in silence (its work is then done on the critical path):
    a library that moved the module named here would make the prefetch useless unseen."""
    code = (
        "import importlib, sys\n"
        "from ablate.cli.prefetch import STORAGE, REPORT\n"
        "for step in (*STORAGE, *REPORT):\n"
        "    step() if callable(step) else importlib.import_module(step)\n"
        "import sqlalchemy.orm, optuna.storages._rdb.models as models\n"
        "print(models.StudyModel.__mapper__.configured)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"  # the mappers were set up in the prefetch, not at the first query
    assert len(STORAGE) > 4 and "ablate.report.figures" in REPORT
