"""Workers through the faults of a real cluster, as a user would meet them: a
PostgreSQL restart, a worker suspended past its heartbeat (SIGSTOP, as SLURM
suspends) and continued, a worker killed mid-unit, a `--jobs 2` coordinator
killed and started again, and a full disk under SQLite. Each checks that every
(arm, seed) is complete exactly once, nothing is left running, and the report is
written. Heartbeat and grace are made short (ABLATE_HEARTBEAT_SECONDS,
ABLATE_CLAIM_GRACE_SECONDS) so each takes seconds."""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa
from pg_server import PgServer, postgres_bin

from ablate.engine.store import attrs
from ablate.engine.store.storage import normalise_url

pytestmark = pytest.mark.slow

HEARTBEAT, GRACE = 0.5, 4.0
ENV = {**os.environ, "ABLATE_HEARTBEAT_SECONDS": str(HEARTBEAT), "ABLATE_CLAIM_GRACE_SECONDS": str(GRACE)}
RUNS = 8  # 4 arms x 2 seeds, each run a unit of its own (stack off): workers share them out
STUDY = """
[study]
name = "faults"
seeds = 2
[data]
name = "digits"
[model]
name = "mlp"
hidden = [32]
[train]
epochs = {epochs}
batch_size = 128
stack = "off"
[factors.norm]
kind = "norm"
levels = ["none", "batchnorm"]
[factors.dropout]
kind = "regularizer"
levels = ["none", "dropout"]
dropout = {{ rate = 0.2 }}
"""
LATE = "dropped this worker's late outcome"


@pytest.fixture(scope="module")
def pg():
    bindir = postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    server = PgServer(bindir)
    try:
        yield server
    finally:
        server.close()


def study_file(tmp_path: Path, epochs: int) -> Path:
    path = tmp_path / "faults.toml"
    path.write_text(textwrap.dedent(STUDY.format(epochs=epochs)))
    return path


def ablate(*args: object, new_session: bool = False) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ablate", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        start_new_session=new_session,
    )


def finish(procs: list[subprocess.Popen[str]], timeout: float = 180) -> list[tuple[int, str, str]]:
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=timeout)
        out.append((p.returncode, stdout, stderr))
    return out


def wait_until(what: Callable[[], object], timeout: float = 90, every: float = 0.1) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what.__name__}")


def engine_of(url: str) -> sa.engine.Engine:
    return sa.create_engine(normalise_url(url), poolclass=sa.pool.NullPool)


def claims(url: str) -> list[tuple[int, str, str, int | None]]:
    """(worker pid, run key, state, trial id) of every claim now."""
    try:
        with engine_of(url).connect() as conn:
            rows = conn.execute(sa.text("SELECT worker, run_key, state, trial_id FROM ablate_claims")).all()
    except sa.exc.SQLAlchemyError:  # not made yet, or the server away
        return []
    return [(int(r[0].rsplit(":", 1)[1]), r[1], r[2], r[3]) for r in rows]


def training(url: str) -> dict[int, dict[str, int]]:
    """worker pid -> the runs it trains now (run key -> trial id), once each has its trial."""
    held: dict[int, dict[str, int | None]] = {}
    for pid, key, state, trial in claims(url):
        if state == "running":
            held.setdefault(pid, {})[key] = trial
    return {pid: runs for pid, runs in held.items() if all(t is not None for t in runs.values())}  # type: ignore[misc]


def complete_trials(url: str) -> int:
    try:
        with engine_of(url).connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM trials WHERE state = 'COMPLETE'")).scalar() or 0)
    except sa.exc.SQLAlchemyError:
        return 0


def check_every_run_once(url: str) -> Counter[str]:
    """Every (arm, seed) complete exactly once, no trial waiting or running, no claim
    left running; returns the trainings per run key (a retrained run counts 2)."""
    trials = optuna.load_study(study_name="faults", storage=url).get_trials(deepcopy=False)
    trainings = Counter(t.user_attrs[attrs.RUN_KEY] for t in trials)
    complete = Counter(t.user_attrs[attrs.RUN_KEY] for t in trials if t.state.name == "COMPLETE")
    runs = {(t.user_attrs[attrs.ARM], t.user_attrs[attrs.SEED]) for t in trials}
    assert len(complete) == RUNS and set(complete.values()) == {1}, complete
    assert len(runs) == RUNS
    assert not [t.number for t in trials if t.state.name in ("RUNNING", "WAITING")]
    assert all(t.state.name == "COMPLETE" or attrs.INTERRUPTED in t.user_attrs for t in trials)
    assert {state for _, _, state, _ in claims(url)} == {"done"}
    return trainings


def check_report(url: str, out: Path) -> None:
    [(code, _, err)] = finish([ablate("report", url, "--study", "faults", "--out", out)])
    assert code == 0, err
    assert (out / "index.html").is_file() and len((out / "results.csv").read_text().splitlines()) == RUNS + 1


def outage_lines(out: str) -> tuple[list[str], list[float]]:
    away = [line for line in out.splitlines() if " went away (" in line]
    back = [float(m) for m in re.findall(r" is back after ([0-9.]+)s", out)]
    return away, back


def test_three_workers_ride_through_a_database_restart(pg, tmp_path):
    """A fast shutdown (sessions terminated) and a start 2 s later: each worker's
    heartbeat meets the outage, says so once, and goes on."""
    url = pg.database("restart")
    study = study_file(tmp_path, epochs=100)
    procs = [ablate("worker", study, "--storage", url) for _ in range(3)]
    wait_until(lambda: len(training(url)) == 3)
    pg.stop()
    stopped = time.monotonic()
    time.sleep(2.0)
    pg.start()
    print(f"\nserver away for {time.monotonic() - stopped:.1f}s")
    for code, out, err in finish(procs):
        assert code == 0, out + err
        away, back = outage_lines(out)
        assert len(away) == 1 and len(back) == 1, out
        assert "--db-patience" in away[0] and "Traceback" not in err
        print(f"worker back after {back[0]:.1f}s")
    assert set(check_every_run_once(url).values()) == {1}  # nothing trained twice
    check_report(url, tmp_path / "report")


def test_a_worker_suspended_past_its_heartbeat_drops_its_late_outcome(pg, tmp_path):
    url = pg.database("suspend")
    study = study_file(tmp_path, epochs=100)
    procs = [ablate("worker", study, "--storage", url) for _ in range(2)]
    held = wait_until(lambda: training(url))
    victim_pid, runs = next(iter(held.items()))  # type: ignore[attr-defined]
    victim = next(p for p in procs if p.pid == victim_pid)
    os.kill(victim_pid, signal.SIGSTOP)
    stopped = time.monotonic()
    wait_until(lambda: all(pid != victim_pid for pid, key, _, _ in claims(url) if key in runs), timeout=120)
    taken = time.monotonic() - stopped
    os.kill(victim_pid, signal.SIGCONT)
    results = dict(zip(procs, finish(procs), strict=True))
    for code, out, err in results.values():
        assert code == 0, out + err
    _, out, _ = results[victim]
    assert out.count(LATE) == len(runs), out
    trainings = check_every_run_once(url)
    assert {k for k, n in trainings.items() if n == 2} == set(runs)  # its runs trained again, once
    print(f"\ntaken over {taken:.1f}s after the stop; {len(runs)} runs trained again")
    check_report(url, tmp_path / "report")


def test_a_worker_killed_mid_unit_has_its_runs_trained_once_by_another(pg, tmp_path):
    url = pg.database("killed")
    study = study_file(tmp_path, epochs=100)
    procs = [ablate("worker", study, "--storage", url) for _ in range(2)]
    held = wait_until(lambda: training(url))
    victim_pid, runs = next(iter(held.items()))  # type: ignore[attr-defined]
    os.kill(victim_pid, signal.SIGKILL)
    results = dict(zip(procs, finish(procs), strict=True))
    for proc, (code, out, err) in results.items():
        assert code == (-signal.SIGKILL if proc.pid == victim_pid else 0), out + err
    trainings = check_every_run_once(url)
    assert {k for k, n in trainings.items() if n == 2} == set(runs)
    check_report(url, tmp_path / "report")


def test_a_worker_gives_up_after_its_db_patience_with_a_user_error(pg, tmp_path):
    url = pg.database("gone")
    study = study_file(tmp_path, epochs=100)
    [worker] = [ablate("worker", study, "--storage", url, "--db-patience", "3s")]
    wait_until(lambda: training(url))
    pg.stop()
    try:
        [(code, out, err)] = finish([worker])
    finally:
        pg.start()
    assert code == 2, out + err
    assert "Traceback" not in err and "--db-patience: the storage" in err and "unreachable for 3 s" in err, err
    assert "run the same command again" in err and len(outage_lines(out)[0]) == 1


def test_a_jobs_2_coordinator_killed_and_started_again_completes_the_study(tmp_path):
    study = study_file(tmp_path, epochs=100)
    out = tmp_path / "out"
    url = f"sqlite:///{out / 'study.db'}"
    first = ablate("run", study, "--out", out, "--jobs", "2", new_session=True)
    held = wait_until(lambda: training(url))
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    os.killpg(first.pid, signal.SIGKILL)  # its worker processes, orphaned, as the node would end them
    first.communicate(timeout=30)
    [(code, stdout, err)] = finish([ablate("run", study, "--out", out, "--jobs", "2")])
    assert code == 0, stdout + err
    trainings = check_every_run_once(url)
    killed = {key for runs in held.values() for key in runs}  # type: ignore[attr-defined]
    assert {k for k, n in trainings.items() if n == 2} <= killed
    assert (out / "index.html").is_file()


def _fill(path: Path) -> None:
    with open(path, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def test_a_full_disk_is_a_user_error_and_the_rerun_trains_only_the_missing_runs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        study = study_file(tmp_path, epochs=40)
        out = disk / "out"
        url = f"sqlite:///{out / 'study.db'}"
        first = ablate("run", study, "--out", out)
        wait_until(lambda: complete_trials(url) >= 2, every=0.02)
        _fill(disk / "ballast")
        [(code, stdout, err)] = finish([first])
        assert code == 2, stdout + err
        assert "Traceback" not in err and "the disk is full" in err and str(out) in err, err
        print("\n" + err.strip())
        stored = complete_trials(url)
        assert 2 <= stored < RUNS
        (disk / "ballast").unlink()
        [(code, stdout, err)] = finish([ablate("run", study, "--out", out)])
        assert code == 0, stdout + err
        assert f"{stored} of {RUNS} runs already stored" in stdout
        assert len(re.findall(r"^\[\d+/8\] ", stdout, re.M)) == RUNS - stored  # only the missing runs train
        check_every_run_once(url)
        assert (out / "index.html").is_file()
        print(f"\n{stored} runs stored before the disk filled; {RUNS - stored} trained by the rerun")
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
