"""`ablate report` on stored studies of 1,000 and 10,000 runs: seconds, peak memory and the
tallest figure, against the targets (10,000 runs in <= 10 s and <= 1 GB, 1,000 in <= 2 s).

The studies are synthetic (no training): trials written into an SQLite Optuna storage the
way `ablate run` stores them (trial_rows' bulk writer: run attributes, the result with its
per-epoch history, per-epoch objective values, final state; one run in a hundred failed),
with the study's record and plan, so `ablate report FOLDER` reads them as any stored study.
Each report runs in a fresh process into a fresh folder (no figure is current), median of
--repeats; peak memory is the largest resident set of the report's processes (the command
and its figure workers, ru_maxrss of the children). --src DIR times the ablate package in
DIR (default: this checkout); with --baseline-src DIR the same
reports are also timed with the ablate package found in DIR (an older checkout), in the
same invocation, and the ratio printed.

    .venv/bin/python benchmarks/report_scale.py [--runs 1000 10000] [--repeats 3]
        [--work DIR] [--keep DIR] [--baseline-src DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {1000: (2.0, None), 10000: (10.0, 1024.0)}  # runs: (seconds, MiB)
SEEDS = 20
EPOCHS = 20
# factor -> options; 5 x 5 x 2 = 50 arms (1,000 runs), 5 x 5 x 5 x 4 = 500 arms (10,000 runs)
NORMS = ["none", "batchnorm", "layernorm", "groupnorm", "rmsnorm"]
RATES = [None, 0.1, 0.2, 0.3, 0.4]
WIDTHS = [[8, 8], [16, 16], [32, 32], [64, 64], [128, 128]]
LRS = [0.0005, 0.001, 0.002, 0.005]


def design(runs: int) -> list[dict[str, object]]:
    """The arms' factor values for a study of ``runs`` runs (20 seeds each)."""
    widths, lrs = (WIDTHS[2:4], LRS[:1]) if runs <= 1000 else (WIDTHS, LRS)
    arms = []
    for norm, rate, width, lr in itertools.product(NORMS, RATES, widths, lrs):
        values: dict[str, object] = {"norm": norm, "dropout": "dropout" if rate else "none"}
        if rate:
            values["dropout.rate"] = rate
        values["width"] = str(width)
        if len(lrs) > 1:
            values["lr"] = lr
        arms.append(values)
    return arms


def arm_name(values: dict[str, object]) -> str:
    parts = [str(values["norm"])] if values["norm"] != "none" else []
    if values["dropout"] != "none":
        parts.append(f"dropout(rate={values['dropout.rate']})")
    parts.append(f"width={values['width']}")
    if "lr" in values:
        parts.append(f"lr={values['lr']}")
    return " + ".join(parts)


def make_study(folder: Path, runs: int) -> None:
    """A stored study of ``runs`` runs in folder/study.db, written as `ablate run` writes one."""
    import numpy as np
    import optuna
    from optuna.distributions import CategoricalDistribution

    from ablate.engine.store import attrs
    from ablate.engine.store import optuna_internals as trial_rows
    from ablate.engine.store.record import RunEntry, StudyRecord

    folder.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(f"sqlite:///{(folder / 'study.db').resolve()}")
    name = f"scale-{runs}"
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize")
    arms = design(runs)
    rng = np.random.default_rng(runs)
    factors = list(dict.fromkeys(k for v in arms for k in v))
    choices = {f: CategoricalDistribution(list(dict.fromkeys(str(v[f]) for v in arms if f in v))) for f in factors}
    plan, new, updates = [], [], []
    for a, values in enumerate(arms):
        arm = arm_name(values)
        arm_key = hashlib.sha256(arm.encode()).hexdigest()[:16]
        effect = 0.01 * NORMS.index(str(values["norm"])) + 0.03 * float(values.get("dropout.rate") or 0)
        effect += 0.004 * str(WIDTHS).index(str(values["width"])) / 10 - 0.5 * float(values.get("lr", 0.001) or 0)
        for seed in range(SEEDS):
            key = hashlib.sha256(f"{arm}|{seed}".encode()).hexdigest()[:16]
            plan.append(RunEntry(key, arm, seed, dict(values), attrs.MAIN, arm_key))
            dists = {f: choices[f] for f in values}
            params = {f: str(v) for f, v in values.items()}
            user = {
                attrs.RUN_KEY: key,
                attrs.ARM: arm,
                attrs.ARM_KEY: arm_key,
                attrs.SEED: seed,
                attrs.STAGE: attrs.MAIN,
                attrs.VALUES: values,
                attrs.FINGERPRINT: "f" * 16,
                attrs.SPEC: {"arm": arm, "seed": seed, "components": [{"kind": "norm", "name": values["norm"]}] * 6},
            }
            new.append(trial_rows.NewTrial(params, dists, user, params))
            updates.append(_outcome(rng, effect, a * SEEDS + seed))
    with_ids = trial_rows.create_running(study, new)
    for (trial_id, _), update in zip(with_ids, updates, strict=True):
        update.trial_id = trial_id
    for start in range(0, len(updates), 2000):
        trial_rows.write(study, updates[start : start + 2000])
    names = [arm_name(v) for v in arms]
    record = StudyRecord(
        name=name,
        question="How long does the report of a large study take?",
        dataset="synthetic",
        model="mlp",
        train={"epochs": EPOCHS, "batch_size": 64, "optimizer": "adam", "lr": 0.001},
        seeds=tuple(range(SEEDS)),
        arms=tuple(names),
        baseline=names[0],
        factors=tuple(factors),
        runs_total=len(plan),
        test_size=1000,
        devices=("cpu",),
        versions={"ablate": "bench"},
        last_command={"seconds": 120.0},
    )
    study.set_user_attr(attrs.RECORD, record.to_json())
    study.set_user_attr(attrs.PLAN, [e.to_json() for e in plan])


def _outcome(rng, effect: float, index: int):  # type: ignore[no-untyped-def]
    from optuna.trial import TrialState

    from ablate.engine.store import attrs
    from ablate.engine.store import optuna_internals as trial_rows

    if index % 100 == 99:
        reason = "RuntimeError: loss is nan"
        detail = {"reason": reason, "component": "norm", "type": "RuntimeError", "message": "loss is nan"}
        detail["traceback"] = "Traceback (most recent call last):\n  ...\nRuntimeError: loss is nan\n"
        return trial_rows.TrialUpdate(
            0, {}, {attrs.FAILURE: reason, attrs.FAILURE_DETAIL: detail}, TrialState.FAIL, None
        )
    test = float(min(0.99, 0.85 + effect + rng.normal(0, 0.01)))
    val = float(min(0.99, 0.85 + effect + rng.normal(0, 0.01)))
    train = float(min(1.0, test + 0.06 + rng.normal(0, 0.005)))
    history = [
        {
            "epoch": e,
            "train_loss": 1.5 / e,
            "train_accuracy": train * (1 - 0.4 / e),
            "val_loss": 1.6 / e,
            "val_accuracy": val * (1 - 0.4 / e),
            "running_loss": 1.7 / e,
            "running_accuracy": train * (1 - 0.5 / e),
        }
        for e in range(1, EPOCHS + 1)
    ]
    metrics = {
        "train_accuracy": train,
        "val_accuracy": val,
        "test_accuracy": test,
        "gap": train - test,
        "train_loss": 0.1,
        "val_loss": 0.3,
        "test_loss": 0.32,
        "loss_gap": 0.22,
    }
    result = {
        "metrics": metrics,
        "history": history,
        "epochs": EPOCHS,
        "stop_reason": "max_epochs",
        "seconds": 0.8,
        "config": {"model": "mlp", "hidden": [32, 32], "epochs": EPOCHS, "batch_size": 64},
        "device": "cpu",
        "threads": 1,
        "sizes": {"train": 800, "val": 200, "test": 1000},
        "versions": {"torch": "bench"},
        "stacked_with": 20,
    }
    user = {attrs.RESULT: result, **{attrs.METRIC_PREFIX + k: v for k, v in metrics.items()}}
    epochs = {h["epoch"]: h["val_accuracy"] for h in history}
    return trial_rows.TrialUpdate(0, epochs, user, TrialState.COMPLETE, [val])


def png_height(path: Path) -> int:
    with open(path, "rb") as f:
        head = f.read(24)
    return int(struct.unpack(">I", head[20:24])[0])


def time_report(study: Path, out: Path, src: Path) -> tuple[float, float, float]:
    """(wall seconds, peak MiB, CPU seconds of every process) of one `ablate report` in a fresh
    process into a fresh folder, with the ablate package found in ``src`` (run from the study's
    folder: `python -m` puts the working directory first on the path)."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    shutil.rmtree(out, ignore_errors=True)
    probe = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
        "wall = time.perf_counter() - t\n"
        "kids = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(wall, kids.ru_maxrss / 1024, kids.ru_utime + kids.ru_stime, rc)\n"
    )
    cmd = [sys.executable, "-c", probe, sys.executable, "-m", "ablate", "report", str(study), "--out", str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd=study)
    wall, mib, cpu, rc = done.stdout.split()
    if rc != "0":
        raise SystemExit(f"ablate report {study} exited {rc}")
    return float(wall), float(mib), float(cpu)


def measure(study: Path, keep: Path, repeats: int, src: Path) -> tuple[float, float, float, int, int, str]:
    """(median seconds, peak MiB, median CPU seconds, tallest figure px, index.html bytes,
    tallest figure's name)."""
    walls, peaks, cpus = [], [], []
    for _ in range(repeats):
        wall, mib, cpu = time_report(study, keep, src)
        walls.append(wall)
        peaks.append(mib)
        cpus.append(cpu)
    heights = {p.name: png_height(p) for p in keep.glob("fig_*.png")}
    tallest = max(heights, key=lambda k: heights[k]) if heights else "-"
    page = (keep / "index.html").stat().st_size
    return statistics.median(walls), max(peaks), statistics.median(cpus), heights.get(tallest, 0), page, tallest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "ablate-report-scale")
    ap.add_argument("--keep", type=Path, default=None, help="report folders kept here (default: under --work)")
    ap.add_argument("--src", type=Path, default=Path(__file__).resolve().parents[1], help="the ablate to time")
    ap.add_argument("--label", default="this", help="its name in the output")
    ap.add_argument("--baseline-src", type=Path, default=None, help="a folder holding another ablate package")
    args = ap.parse_args()
    keep = args.keep or args.work / "reports"
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (a shared machine varies)")
    for runs in args.runs:
        study = args.work / f"study-{runs}"
        if not (study / "study.db").is_file():
            t = time.perf_counter()
            shutil.rmtree(study, ignore_errors=True)
            make_study(study, runs)
            print(f"wrote {study} ({runs} runs) in {time.perf_counter() - t:.1f}s")
        target_s, target_mib = TARGETS.get(runs, (None, None))
        rows = [(args.label, args.src)] + ([("baseline", args.baseline_src)] if args.baseline_src else [])
        got = {}
        for label, src in rows:
            s, mib, cpu, px, page, fig = measure(study, keep / f"{label}-{runs}", args.repeats, src)
            got[label] = s
            print(
                f"{runs} runs [{label}]: {s:.2f}s median of {args.repeats} ({cpu:.1f} CPU s, figure workers "
                f"included; load average {os.getloadavg()[0]:.1f}), peak {mib:.0f} MiB, "
                f"tallest figure {px}px ({fig}), index.html {page / 1024:.0f} KB"
                + (f"; target <= {target_s:g}s: {'ok' if s <= target_s else 'SLOW'}" if target_s else "")
                + (f", <= {target_mib:g} MiB: {'ok' if mib <= target_mib else 'OVER'}" if target_mib else "")
            )
        if "baseline" in got:
            print(f"{runs} runs: {args.label} / baseline = {got[args.label] / got['baseline']:.2f}")
    print(json.dumps({"reports": str(keep)}))


if __name__ == "__main__":
    main()
