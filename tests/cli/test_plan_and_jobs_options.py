"""`ablate plan --out` and `ablate run --dry-run --out` read the runs stored in the
folder named (they read the default folder whatever was given); `--jobs` beyond the
usable cores starts one worker per core, and says so."""

from __future__ import annotations

import pytest
from support import TINY

import ablate.engine.pool


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """The tiny study, run once into a folder of its own (not reports/tiny)."""
    from ablate.cli import main

    folder = tmp_path_factory.mktemp("stored")
    study = folder / "study.toml"
    study.write_text(TINY)
    assert main(["run", str(study), "--out", str(folder / "out")]) == 0
    return study, folder / "out"


def test_plan_reads_the_runs_stored_in_the_folder_it_is_given(stored, run_cli, tmp_path, monkeypatch):
    study, out = stored
    monkeypatch.chdir(tmp_path)  # no reports/tiny here
    code, stdout, _ = run_cli("plan", study, "--no-calibrate")
    assert code == 0 and "runs stored in" not in stdout
    code, stdout, _ = run_cli("plan", study, "--no-calibrate", "--out", out)
    assert code == 0 and f"from the 8 runs stored in {out}:" in stdout
    code, stdout, _ = run_cli("run", study, "--dry-run", "--out", out)
    assert code == 0 and f"from the 8 runs stored in {out}:" in stdout


def test_more_jobs_than_cores_start_one_worker_per_core(stored, run_cli, monkeypatch):
    study, out = stored
    monkeypatch.setattr(ablate.engine.pool, "usable_cores", lambda: 1)
    code, stdout, stderr = run_cli("run", study, "--out", out, "--jobs", "999")
    assert code == 0
    assert "worker processes" not in stdout  # the study line counts them past one: 999 without the cap
    assert "--jobs 999 is more than this machine's usable cores: starting one worker process per core (1)" in stderr
