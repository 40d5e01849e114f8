"""What an executor hands back to the coordinator: ("epoch", key, metrics),
("done", key, RunResult), ("failed", key, failure record), ("pruned", key,
history), ("died", key, reason)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Event = tuple[str, str, Any]
OnRunEpoch = Callable[[str, dict[str, float]], bool]  # (run key, metrics) -> prune now?


class RunPruned(Exception):
    """Raised in a worker's epoch callback when the coordinator prunes the run:
    ends that run as pruned (Optuna's own TrialPruned would import Optuna, a
    third of a second, into every worker)."""
