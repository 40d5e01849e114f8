"""The local worker pool (`--jobs N`): started in the background, stoppable at any time."""

from ablate.engine.pool import ProcessPool


def test_a_pool_closed_at_once_stops_what_it_starts():
    pool = ProcessPool(2, [], [])
    pool.close()  # a fresh fork server is still importing torch then: close does not wait for it
    pool._starting.join(timeout=120)
    assert len(pool._children) < 2  # the one being started when it closed, at most: no more
    assert not any(child.process.is_alive() for child in pool._children)


def test_a_started_pool_trains_nothing_until_asked_and_closes():
    pool = ProcessPool(2, [], [])
    assert pool.busy() == 0 and pool.capacity == 2  # waits for the workers
    assert all(child.process.is_alive() for child in pool.children)
    assert pool.poll(0.1) == []
    pool.close()
    assert not any(child.process.is_alive() for child in pool.children)


COORDINATOR = """
import sys
from ablate.cli import main
code = main(sys.argv[1:])
heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'sklearn', 'torchvision'})
print('coordinator imported:', heavy)
sys.exit(code)
"""


def test_the_coordinating_process_of_jobs_2_never_imports_torch(tmp_path):
    """Workers load the data and answer for the environment; the command that
    coordinates loads, checks, stores and reports without torch (seconds of start-up)."""
    import subprocess
    import sys

    from support import TINY

    study = tmp_path / "tiny.toml"
    study.write_text(TINY.replace("epochs = 4", "epochs = 1"))
    out = tmp_path / "out"
    run = [sys.executable, "-c", COORDINATOR, "run", str(study), "--out", str(out), "--jobs", "2"]
    done = subprocess.run(run, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "coordinator imported: []" in done.stdout
    assert "8 runs on cpu, 2 worker processes" in done.stdout
    assert (out / "results.csv").read_text().count("\n") == 9  # a header and 8 runs


def test_a_data_set_that_will_not_load_in_a_worker_is_the_users_error_before_training(tmp_path):
    import subprocess
    import sys

    study = tmp_path / "mnist.toml"
    study.write_text(
        '[study]\nname = "m"\nseeds = 2\n[data]\nname = "mnist"\nroot = "nowhere"\n[train]\nepochs = 1\n'
        '[factors.norm]\nkind = "norm"\nlevels = ["none", "batchnorm"]\n'
    )
    run = [sys.executable, "-m", "ablate", "run", str(study), "--out", str(tmp_path / "out"), "--jobs", "2"]
    done = subprocess.run(run, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "error:" in done.stderr and "nowhere" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out" / "study.db").exists()  # nothing was trained or stored
