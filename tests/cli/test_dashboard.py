"""optuna-dashboard, started on loopback against a study's storage, lists its
trials while workers train, with a named objective, per-epoch values and each
final metric as its own attribute."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

STUDY = """
[study]
name = "watched"
seeds = 2
[data]
name = "digits"
[model]
name = "mlp"
hidden = [32]
[train]
epochs = 400  # long enough to outlast the dashboard's start (4 runs train as one stack)
batch_size = 64
[factors.dropout]
kind = "regularizer"
levels = ["none", "dropout"]
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _wait_for(url: str, ready, timeout: float = 120) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            data = _get(url)
            if ready(data):
                return data
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} never answered as expected")


def test_the_dashboard_lists_trials_while_workers_run_then_names_and_curves(tmp_path):
    dashboard = shutil.which("optuna-dashboard", path=str(Path(sys.executable).parent))
    if dashboard is None:
        pytest.skip("optuna-dashboard is not installed (pip install 'ablate[dashboard]')")
    study = tmp_path / "watched.toml"
    study.write_text(textwrap.dedent(STUDY))
    url = f"sqlite:///{tmp_path / 'study.db'}"
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "ablate", "worker", str(study), "--storage", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    _wait_for_db = time.time() + 120
    while not (tmp_path / "study.db").exists() and time.time() < _wait_for_db:
        time.sleep(0.2)
    port = _port()
    server = subprocess.Popen(
        [dashboard, url, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        api = f"http://127.0.0.1:{port}/api/studies"
        summaries = _wait_for(api, lambda d: d.get("study_summaries"))["study_summaries"]
        study_id = summaries[0]["study_id"]
        live = _wait_for(f"{api}/{study_id}?after=0", lambda d: len(d["trials"]) > 0)
        assert any(w.poll() is None for w in workers), "the trials were listed only after the workers ended"
        assert live["trials"][0]["params"]  # the arm's factor values
        for w in workers:
            _, err = w.communicate(timeout=240)
            assert w.returncode == 0, err
        done = _wait_for(
            f"{api}/{study_id}?after=0",
            lambda d: len(d["trials"]) == 4 and all(t["state"] == "Complete" for t in d["trials"]),
        )
        assert done["objective_names"] == ["val_accuracy"]
        trial = done["trials"][0]
        assert len(trial["intermediate_values"]) >= 2  # per-epoch validation accuracy
        keys = {a["key"] for a in trial["user_attrs"]}
        assert {"metric:test_accuracy", "metric:gap", "metric:train_accuracy"} <= keys
    finally:
        server.terminate()
        server.wait(timeout=10)
        for w in workers:
            if w.poll() is None:
                w.kill()
