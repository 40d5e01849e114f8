"""What several test modules share: a tiny real study and helpers to make and
run components (imported as `support`, never through conftest)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch  # noqa: F401  (run_arm's annotations)

from ablate.engine.store.record import StudyRecord

TINY = """
[study]
name = "tiny"
question = "Does dropout help a tiny MLP on digits?"
seeds = 2

[data]
name = "digits"

[model]
name = "mlp"
hidden = [32]

[train]
epochs = 4
batch_size = 128

[factors.norm]
kind = "norm"
levels = ["none", "batchnorm"]

[factors.dropout]
kind = "regularizer"
levels = ["none", "dropout"]
dropout = { rate = 0.2 }
"""


def make(registry, kind, name, **given):
    params = registry.resolve_params(kind, name, given, key=f"test.{name}")
    return registry.create(kind, name, params)


def run_arm(study_path, registry, *components, seed=0):
    """Train one real run of the study with the given (kind, name, params) active."""
    from ablate.spec import ComponentSpec, Execution
    from ablate.study.config import load_study
    from ablate.study.design import Arm, run_spec
    from ablate.train.training import train_run

    config = load_study(study_path, registry)
    resolved = tuple(
        ComponentSpec(kind, name, registry.resolve_params(kind, name, params, key=name))
        for kind, name, params in components
    )
    return train_run(run_spec(config, Arm("arm", {}, resolved, {}), seed), registry, Execution("cpu"))


_METRICS = ["train_accuracy", "val_accuracy", "test_accuracy", "gap", "train_loss", "val_loss", "test_loss", "loss_gap"]


EVIL = "<script>alert(1)</script>"


def _study(arms, seeds, failed=(), norms=None):
    """Synthetic table + histories; early-stopped runs get shorter histories."""
    rng = np.random.default_rng(0)
    rows, histories = [], []
    for a, arm in enumerate(arms):
        for seed in seeds:
            norm = (norms or {}).get(arm, f"norm{a}")
            if (arm, seed) in failed:
                rows.append(
                    {
                        "arm": arm,
                        "seed": seed,
                        "status": "failed",
                        "norm": norm,
                        "dropout.rate": np.nan,
                        **{k: np.nan for k in _METRICS},
                        "epochs": 0,
                        "stop_reason": "",
                        "seconds": 0.5,
                        "failure": f"RuntimeError: {EVIL} diverged",
                    }
                )
                continue
            test = 0.8 + 0.03 * a + rng.normal(0, 0.01)
            train = test + 0.02 + 0.01 * (a % 3) + rng.normal(0, 0.005)
            epochs = 6 + (seed % 3) * 2
            rows.append(
                {
                    "arm": arm,
                    "seed": seed,
                    "status": "complete",
                    "norm": norm,
                    "dropout.rate": 0.5 if a == 1 else np.nan,
                    "train_accuracy": train,
                    "val_accuracy": test + 0.005,
                    "test_accuracy": test,
                    "gap": train - test,
                    "train_loss": 0.2,
                    "val_loss": 0.35,
                    "test_loss": 0.4,
                    "loss_gap": 0.2,
                    "epochs": epochs,
                    "stop_reason": "early_stopping" if epochs < 10 else "max_epochs",
                    "seconds": 3.0,
                    "failure": "",
                }
            )
            histories.append(
                {
                    "arm": arm,
                    "seed": seed,
                    "history": [
                        {
                            "epoch": e,
                            "train_loss": 1 / e,
                            "train_accuracy": train * (1 - 0.5 / e),
                            "val_loss": 1.2 / e,
                            "val_accuracy": test * (1 - 0.5 / e),
                        }
                        for e in range(1, epochs + 1)
                    ],
                }
            )
    record = StudyRecord(
        name=f"Norm study {EVIL}",
        question="Does normalization help?",
        dataset="mnist1d",
        model="mlp",
        arms=tuple(arms),
        factors=("norm", "dropout"),
        baseline=arms[0],
        seeds=tuple(seeds),
        devices=("cpu",),
        versions={"torch": "2.3.0", "ablate": "0.1.0"},
        last_command={"seconds": 3725.0},
        started="2024-01-01T00:00:00",
        train={"epochs": 10, "lr": 0.001},
        runs_total=len(arms) * len(seeds),
    )
    return pd.DataFrame(rows), histories, record


def pip_install(source: Path, work: Path) -> dict[str, str]:
    """pip-install the distribution in ``source`` into ``work``/site (no network;
    built from a copy, so the source folder stays clean); return the environment
    that sees it, with any ABLATE_DISABLE_PLUGINS of the caller's cleared."""
    site, build = work / "site", work / "src"
    shutil.copytree(source, build, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--no-build-isolation"]
        + ["--target", str(site), str(build)],
        check=True,
    )
    env = {k: v for k, v in os.environ.items() if k != "ABLATE_DISABLE_PLUGINS"}
    return {**env, "PYTHONPATH": str(site)}


def ablate(env: dict[str, str], *args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m ablate ARGS` in a subprocess with ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "ablate", *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


def one_epoch_study(name: str = "tiny", seeds: int = 1, data: str = 'name = "digits"', train: str = "") -> str:
    """A one-epoch study of an 8-unit MLP, the smallest that trains for real, without
    factors: a test adds the ones it needs."""
    return (
        f'[study]\nname = "{name}"\nseeds = {seeds}\n\n[data]\n{data}\n\n'
        f'[model]\nname = "mlp"\nhidden = [8]\n\n[train]\nepochs = 1\n{train}\n'
    )


DROPOUT_FACTOR = '[factors.dropout]\nkind = "regularizer"\nlevels = ["none", "dropout"]\n'


def running(pid: int) -> bool:
    """The process is alive and not a zombie (one its parent has not reaped has ended all the same)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return not Path("/proc/self").exists() and _signalable(pid)


def _signalable(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def descendants(pid: int | None = None) -> set[int]:
    """The running (not zombie) processes below ``pid`` (default: this one), from /proc."""
    parents: dict[int, int] = {}
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended while listed
            continue
        if fields[0] not in ("Z", "X"):
            parents[int(status.parent.name)] = int(fields[1])
    found, todo = set(), [pid or os.getpid()]
    while todo:
        above = todo.pop()
        below = {child for child, parent in parents.items() if parent == above}
        todo.extend(below - found)
        found |= below
    return found
