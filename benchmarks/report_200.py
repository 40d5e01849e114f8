"""Time to write the tables and the report of a 200-run study (40 arms x 5 seeds,
3 factors, 40-epoch histories), from a synthetic table shaped like
ablate.engine.store.results.collect's. Prints wall and CPU seconds (figure workers included, and the
machine's load, since wall time on a shared machine says little); the target is <= 4 s.

    .venv/bin/python benchmarks/report_200.py [--arms-dropout 5 --seeds 5 --epochs 40 --out DIR]

Arms = norm (4 levels) x dropout (--arms-dropout levels, a crossed rate) x
early stopping (2 levels); one run in fifty fails, so the failure table shows.
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ablate.engine.store.record import StudyRecord
from ablate.engine.store.results import METRICS


def synthetic(dropout_levels: int = 5, seeds: int = 5, epochs: int = 40):
    """(table, histories, record) with additive effects, one overlap and seed noise."""
    rng = np.random.default_rng(0)
    norms = ["none", "batchnorm", "layernorm", "groupnorm"]
    rates = [None] + [round(0.1 + 0.15 * i, 2) for i in range(dropout_levels - 1)]
    stops = ["none", "early_stopping"]
    rows, histories, arms, plan = [], [], [], 0
    for norm, rate, stop in itertools.product(norms, rates, stops):
        parts = [
            p
            for p in (
                norm if norm != "none" else "",
                f"dropout(rate={rate})" if rate else "",
                stop if stop != "none" else "",
            )
            if p
        ]
        arm = " + ".join(parts) or "baseline"
        arms.append(arm)
        effect = 0.02 * norms.index(norm) / 3 + (0.01 if rate else 0) + (0.008 if stop != "none" else 0)
        effect -= 0.006 if (rate and stop != "none") else 0  # dropout and early stopping overlap
        for seed in range(seeds):
            plan += 1
            base = {
                "arm": arm,
                "seed": seed,
                "norm": norm,
                "dropout": "dropout" if rate else "none",
                "dropout.rate": rate if rate else np.nan,
                "early_stopping": stop,
            }
            if plan % 50 == 0:
                rows.append(
                    {
                        **base,
                        "status": "failed",
                        **{m: np.nan for m in METRICS},
                        "epochs": 0,
                        "stop_reason": "failed",
                        "seconds": 0.1,
                        "failure": "RuntimeError: loss is nan",
                        "trial": plan,
                    }
                )
                continue
            test = 0.9 + effect + rng.normal(0, 0.004)
            train = test + 0.05 - 0.6 * effect + rng.normal(0, 0.003)
            n_ep = int(rng.integers(epochs // 2, epochs + 1)) if stop != "none" else epochs
            rows.append(
                {
                    **base,
                    "status": "complete",
                    "train_accuracy": train,
                    "val_accuracy": test + 0.002,
                    "test_accuracy": test,
                    "gap": train - test,
                    "train_loss": 0.1,
                    "val_loss": 0.3,
                    "test_loss": 0.32,
                    "loss_gap": 0.22,
                    "epochs": n_ep,
                    "stop_reason": "early_stopping" if n_ep < epochs else "max_epochs",
                    "seconds": 2.5,
                    "failure": "",
                    "trial": plan,
                }
            )
            e = np.arange(1, n_ep + 1)
            histories.append(
                {
                    "arm": arm,
                    "seed": seed,
                    "config": {},
                    "history": [
                        {
                            "epoch": int(k),
                            "train_loss": float(1 / k),
                            "val_loss": float(1.2 / k),
                            "train_accuracy": float(train * (1 - 0.5 / k)),
                            "val_accuracy": float(test * (1 - 0.5 / k)),
                            "running_loss": float(1.3 / k),
                            "running_accuracy": float(train * (1 - 0.6 / k)),
                        }
                        for k in e
                    ],
                }
            )
    factors = ["norm", "dropout", "dropout.rate", "early_stopping"]
    cols = ["arm", "seed", "status", *factors, *METRICS, "epochs", "stop_reason", "seconds", "failure", "trial"]
    record = StudyRecord(
        name="synthetic-200",
        question="How fast is a 200-run report?",
        dataset="synthetic",
        model="mlp",
        arms=tuple(arms),
        baseline="baseline",
        seeds=tuple(range(seeds)),
        factors=tuple(factors),
        runs_total=len(rows),
        devices=("cpu",),
        last_command={"seconds": 500.0},
        versions={"ablate": "bench"},
        test_size=360,
        train={"epochs": epochs, "batch_size": 64},
    )
    return pd.DataFrame(rows, columns=cols), histories, record


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arms-dropout", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    t0 = time.perf_counter()
    from ablate.engine.store.results import write_tables
    from ablate.report import write_report

    imported = time.perf_counter() - t0
    table, histories, record = synthetic(args.arms_dropout, args.seeds, args.epochs)
    out = args.out or Path(tempfile.mkdtemp(prefix="ablate-report-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    wall, cpu = time.perf_counter(), _cpu()
    write_tables(out, table, histories, record)
    tables = time.perf_counter() - wall
    write_report(out, table, histories, record)
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    print(
        f"{len(table)} runs, {len(record.arms)} arms: write_tables {tables:.2f}s, "
        f"write_tables + write_report {wall:.2f}s wall ({cpu:.2f}s CPU with figure workers, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs), imports {imported:.2f}s; "
        f"target <= 4 s: {'ok' if wall <= 4 else 'SLOW'}; output {out}"
    )


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the figure workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


if __name__ == "__main__":
    main()
