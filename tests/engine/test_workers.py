"""Many workers on one storage: every run trains exactly once (trainings are
counted, not rows), a killed or stopped worker's run is trained again by
another, and nothing is left queued or running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa

from ablate.engine.store import attrs
from ablate.engine.store.optuna_internals import trial_id_of

pytestmark = pytest.mark.slow

STUDY = """
[study]
name = "many"
seeds = 2
[data]
name = "digits"
[model]
name = "mlp"
hidden = [32]
[train]
epochs = {epochs}
batch_size = 128
[factors.norm]
kind = "norm"
levels = ["none", "batchnorm"]
[factors.dropout]
kind = "regularizer"
levels = ["none", "dropout"]
dropout = {{ rate = 0.2 }}
"""
RUNS = 8


def ablate(*args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ablate", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def study_file(tmp_path: Path, epochs: int = 3) -> Path:
    path = tmp_path / "many.toml"
    path.write_text(textwrap.dedent(STUDY.format(epochs=epochs)))
    return path


def trainings(url: str) -> tuple[Counter[str], Counter[str]]:
    """(trainings per run key, trials per state) of the study in storage."""
    study = optuna.load_study(study_name="many", storage=url)
    trials = study.get_trials(deepcopy=False)
    return Counter(t.user_attrs[attrs.RUN_KEY] for t in trials), Counter(t.state.name for t in trials)


def finish(procs: list[subprocess.Popen[str]], timeout: float = 240) -> list[tuple[int, str]]:
    out = []
    for p in procs:
        _, err = p.communicate(timeout=timeout)
        out.append((p.returncode, err))
    return out


def test_four_run_commands_started_at_once_on_one_fresh_sqlite_folder(tmp_path):
    study = study_file(tmp_path)
    procs = [ablate("run", study, "--out", tmp_path / "out") for _ in range(4)]
    for code, err in finish(procs):
        assert code == 0, err
        assert "database is locked" not in err
    per_run, states = trainings(f"sqlite:///{tmp_path / 'out' / 'study.db'}")
    assert len(per_run) == RUNS and set(per_run.values()) == {1}, per_run
    assert states == Counter({"COMPLETE": RUNS})


def _claims(db: Path) -> list[tuple[int, str, int | None]]:
    """(worker pid, run key, trial id or None) of the runs claimed right now (the claims table)."""
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT worker, run_key, trial_id FROM ablate_claims WHERE state = 'running'")
            ).all()
    except sa.exc.OperationalError:
        return []
    finally:
        engine.dispose()
    return [(int(r[0].rsplit(":", 1)[1]), r[1], None if r[2] is None else int(r[2])) for r in rows]


def _wait_for_training(db: Path, pids: set[int], timeout: float = 120) -> tuple[int, dict[str, int]]:
    """A worker among ``pids`` training now, with every run it holds (run key -> trial id):
    one run, or the seeds of an arm trained stacked."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        claims = _claims(db)
        training = {p for p, _, trial in claims if p in pids and trial is not None}
        for pid in training:  # a unit's runs are all claimed before its trials are made
            mine = {key: trial for p, key, trial in claims if p == pid}
            if all(trial is not None for trial in mine.values()):
                time.sleep(0.5)  # into its first epochs
                return pid, {key: trial for key, trial in mine.items() if trial is not None}
        time.sleep(0.2)
    raise AssertionError("no worker started training")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_a_killed_or_stopped_worker_has_its_runs_trained_again_once(tmp_path, sig):
    study = study_file(tmp_path, epochs=150)
    db = tmp_path / "study.db"
    url = f"sqlite:///{db}"
    procs = [ablate("worker", study, "--storage", url) for _ in range(4)]
    victim_pid, held = _wait_for_training(db, {p.pid for p in procs})
    victim = next(p for p in procs if p.pid == victim_pid)
    os.kill(victim_pid, sig)
    stopped_at = time.time()
    victim.communicate(timeout=60)
    stopped_after = time.time() - stopped_at
    for code, err in finish([p for p in procs if p is not victim]):
        assert code == 0, err
    per_run, states = trainings(url)
    trials = {trial_id_of(t): t for t in optuna.load_study(study_name="many", storage=url).get_trials()}
    interrupted = {key for key, trial in held.items() if trials[trial].state.name != "COMPLETE"}
    assert len(per_run) == RUNS and states["COMPLETE"] == RUNS
    # only the runs it held when stopped trained twice; their first trainings are kept, marked as such
    assert {key for key, n in per_run.items() if n == 2} == interrupted and set(per_run.values()) <= {1, 2}
    assert states == Counter({"COMPLETE": RUNS, **({"FAIL": len(interrupted)} if interrupted else {})})
    assert all(attrs.INTERRUPTED in trials[held[key]].user_attrs for key in interrupted)
    if interrupted and sig != signal.SIGKILL:  # a stop gives its runs back at once, not after the grace
        assert victim.returncode == 130 and stopped_after < 15


def test_eight_workers_on_postgresql_train_every_run_once_then_report(tmp_path, postgres_url):
    study = study_file(tmp_path)
    procs = [ablate("worker", study, "--storage", postgres_url) for _ in range(8)]
    for code, err in finish(procs):
        assert code == 0, err
    per_run, states = trainings(postgres_url)
    assert len(per_run) == RUNS and set(per_run.values()) == {1}, per_run
    assert states == Counter({"COMPLETE": RUNS})
    report = ablate("report", postgres_url, "--study", "many", "--out", tmp_path / "report")
    [(code, err)] = finish([report])
    assert code == 0, err
    assert (tmp_path / "report" / "index.html").is_file()
