"""The `ablate` program ends without the interpreter's teardown, after every
exit handler, with its own exit status; the fork server of a pool does too."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from support import TINY

PROGRAM = textwrap.dedent(
    """
    import atexit, sys
    from ablate.engine import quick_exit
    quick_exit.install()

    class Loud:
        def __del__(self):
            print("teardown ran", flush=True)

    keep = Loud()  # a module global: only the interpreter's teardown deletes it
    atexit.register(lambda: print("handler ran", flush=True))
    print("work done", end="")  # unflushed: quick_exit must flush it
    if sys.argv[1] != "none":
        quick_exit.set_status(int(sys.argv[1]))
    sys.exit(int(sys.argv[2]))
    """
)


def _run(status: str, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PROGRAM, status, code], capture_output=True, text=True, timeout=60)


def test_a_set_status_skips_the_teardown_after_the_exit_handlers_and_flushes_output():
    done = _run("3", "3")
    assert done.returncode == 3
    assert done.stdout.startswith("work done")
    assert "handler ran" in done.stdout
    assert "teardown ran" not in done.stdout


def test_without_a_status_the_process_tears_down_as_usual():
    done = _run("none", "5")
    assert done.returncode == 5
    assert "handler ran" in done.stdout and "teardown ran" in done.stdout


def test_the_program_keeps_its_exit_status_and_loses_no_output_or_results(tmp_path):
    """An error keeps status 2; a run with a pool (whose fork server holds the same
    pipes and ends at once too) prints everything and writes its report."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[study]\nname = 'x'\nseeds = 'many'\n")
    done = subprocess.run([sys.executable, "-m", "ablate", "run", str(bad)], capture_output=True, text=True)
    assert done.returncode == 2 and "error:" in done.stderr

    study = tmp_path / "tiny.toml"
    study.write_text(TINY.replace("epochs = 4", "epochs = 1"))
    done = subprocess.run(
        [sys.executable, "-m", "ablate", "run", str(study), "--out", str(tmp_path / "out"), "--jobs", "2"],
        capture_output=True,  # returns only once every holder of the pipes has closed them
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "report written" in done.stdout
    assert (tmp_path / "out" / "index.html").is_file()
