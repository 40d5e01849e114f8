"""`ablate new-plugin NAME --dir DIR` where DIR is a file, lies under a file, or
cannot be created is a user error (exit 2) naming --dir and its value, not a
traceback; nothing is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXPECTED = "expected a folder you can write, or a path where one can be created"


def _user_error(code: int, out: str, err: str) -> None:
    assert code == 2, err
    assert out == "" and "Traceback" not in err and "internal error" not in err
    assert err.startswith("error: --dir: ") and EXPECTED in err


def test_a_dir_that_is_a_regular_file(tmp_path, run_cli):
    afile = tmp_path / "notes.txt"
    afile.write_text("not a folder")
    code, out, err = run_cli("new-plugin", "demo", "--dir", afile)
    _user_error(code, out, err)
    assert f"'{afile}' is a file, not a folder" in err
    assert afile.read_text() == "not a folder"


def test_a_dir_under_a_regular_file(tmp_path, run_cli):
    afile = tmp_path / "notes.txt"
    afile.write_text("")
    code, out, err = run_cli("new-plugin", "demo", "--dir", afile / "sub")
    _user_error(code, out, err)
    assert f"'{afile / 'sub'}' is inside '{afile}', which is a file, not a folder" in err


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, where no folder can be made")
def test_a_dir_that_cannot_be_created(run_cli):
    code, out, err = run_cli("new-plugin", "demo", "--dir", "/proc/nope")
    _user_error(code, out, err)
    assert "cannot write the package under '/proc/nope': /proc/nope: No such file or directory" in err
    assert not Path("/proc/nope").exists()


def test_the_program_exits_2_without_a_traceback(tmp_path):
    afile = tmp_path / "notes.txt"
    afile.write_text("")
    done = subprocess.run(
        [sys.executable, "-m", "ablate", "new-plugin", "demo", "--dir", str(afile)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    _user_error(done.returncode, done.stdout, done.stderr)


def test_a_new_folder_with_missing_parents_is_still_made(tmp_path, run_cli):
    code, _out, err = run_cli("new-plugin", "demo", "--dir", tmp_path / "a" / "b")
    assert code == 0, err
    assert (tmp_path / "a" / "b" / "ablate-demo" / "pyproject.toml").is_file()
