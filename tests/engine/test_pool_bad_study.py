"""`ablate run --jobs 2` of a study with a mistake: the error alone, never a worker's
traceback. The command starts its workers before it reads the study; it used to exit
while one was still reading its start-up data, whose semaphores the exit then removed
(a FileNotFoundError traceback from the fork server in about a third of runs)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support import TINY


@pytest.mark.slow
def test_a_bad_study_with_workers_starting_prints_only_its_error(tmp_path):
    study = tmp_path / "study.toml"
    study.write_text(TINY.replace('name = "digits"', 'name = "digts"'))
    for _ in range(4):  # the race was lost about one run in three
        done = subprocess.run(
            [sys.executable, "-m", "ablate", "run", str(study), "--out", str(tmp_path / "out"), "--jobs", "2"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2
        assert "did you mean 'digits'" in done.stderr
        assert "Traceback" not in done.stderr, done.stderr
