"""Synthetic factorial studies for report tests: no training, tables shaped like
ablate.engine.store.results.collect's, with effects planted where a test wants them."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ablate.engine.store.record import StudyRecord

METRICS = ["train_accuracy", "val_accuracy", "test_accuracy", "gap", "train_loss", "val_loss", "test_loss", "loss_gap"]
Effect = Callable[[Mapping[str, str]], float]


def arm_name(levels: Mapping[str, str]) -> str:
    """ "baseline" when every factor is at its first level ("none"), else the levels joined by " + "."""
    parts = [v for v in levels.values() if v != "none"]
    return " + ".join(parts) or "baseline"


def factorial(
    factors: Mapping[str, Sequence[str]],
    seeds: int = 5,
    sd: float = 0.01,
    test_effect: Effect | None = None,
    train_effect: Effect | None = None,
    rng: np.random.Generator | None = None,
    base: float = 0.9,
    train_base: float = 0.97,
) -> tuple[pd.DataFrame, StudyRecord]:
    """(table, record) of a full factorial: test = base + effect + N(0, sd), train likewise, per run.

    Fast on purpose (one DataFrame built from a dict of columns): simulations build hundreds."""
    rng = rng or np.random.default_rng(0)
    names = list(factors)
    combos = list(itertools.product(*(factors[f] for f in names)))
    cols: dict[str, list[Any]] = {k: [] for k in ["arm", "seed", "status", *names]}
    arms = []
    for combo in combos:
        lv = dict(zip(names, combo))
        arm = arm_name(lv)
        arms.append(arm)
        for s in range(seeds):
            cols["arm"].append(arm)
            cols["seed"].append(s)
            cols["status"].append("complete")
            for f in names:
                cols[f].append(lv[f])
    n = len(cols["arm"])
    per_run = [dict(zip(names, c)) for c in combos for _ in range(seeds)]
    te = np.array([test_effect(lv) if test_effect else 0.0 for lv in per_run])
    tr = np.array([train_effect(lv) if train_effect else 0.0 for lv in per_run])
    test = base + te + rng.normal(0, sd, n)
    train = np.minimum(train_base + tr + rng.normal(0, sd, n), 1.0)
    val = base + te + rng.normal(0, sd, n)
    table = pd.DataFrame(
        {
            **cols,
            "train_accuracy": train,
            "val_accuracy": val,
            "test_accuracy": test,
            "gap": train - test,
            "train_loss": 0.1,
            "val_loss": 0.3,
            "test_loss": 0.32,
            "loss_gap": 0.22,
            "epochs": 20,
            "stop_reason": "max_epochs",
            "seconds": 1.0,
            "failure": "",
        }
    )
    record = StudyRecord(
        name="synthetic",
        question="Which factor helps?",
        dataset="synthetic",
        model="mlp",
        arms=tuple(arms),
        factors=tuple(names),
        seeds=tuple(range(seeds)),
        baseline="baseline" if "baseline" in arms else None,
        runs_total=n,
        train={"epochs": 20, "optimizer": "adam", "momentum": 0.9, "lr": 0.001},
    )
    return table, record


def histories(
    table: pd.DataFrame, epochs: int = 20, eval_train: bool = True, stop: Mapping[tuple[str, int], int] | None = None
) -> list[dict[str, Any]]:
    """Per-epoch histories ending at each run's table values (stop: (arm, seed) -> last epoch)."""
    out = []
    for r in table.to_dict("records"):
        last = (stop or {}).get((r["arm"], r["seed"]), epochs)
        hist = []
        for e in range(1, last + 1):
            k = e / last
            entry = {
                "epoch": e,
                "train_accuracy": r["train_accuracy"] * (0.6 + 0.4 * k**0.3),
                "val_accuracy": r["val_accuracy"] * (0.6 + 0.4 * k**0.3),
                "train_loss": 0.1 + 1.5 * (1 - k),
                "val_loss": 0.3 + 1.2 * (1 - k),
            }
            if eval_train:
                entry.update(running_loss=entry["train_loss"] * 1.3, running_accuracy=entry["train_accuracy"] * 0.9)
            hist.append(entry)
        out.append({"arm": r["arm"], "seed": r["seed"], "history": hist, "config": {}})
    return out


def nan_metrics() -> dict[str, float]:
    return {m: math.nan for m in METRICS}
