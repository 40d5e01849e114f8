"""Adaptive seeds end to end: rounds decided from stored results only, so a study
interrupted with Ctrl-C in its second round and run again ends with the same rounds
and the same results as one that ran straight through; bad seed tables exit 2."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow

STUDY = """
[study]
name = "adaptive"
seeds = { min = 2, max = 6 }
margin = 0.1
[data]
name = "digits"
[model]
name = "mlp"
hidden = [16]
[train]
epochs = 2
batch_size = 128
[factors.norm]
kind = "norm"
levels = ["none", "batchnorm"]
[factors.dropout]
kind = "regularizer"
levels = ["none", "dropout"]
dropout = { rate = 0.2 }
"""


def ablate(*args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ablate", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def rounds_of(log: str) -> list[str]:
    return [line.split(":")[0] for line in log.splitlines() if line.startswith("round ")]


def results(out: Path) -> pd.DataFrame:
    cols = ["arm", "seed", "status", "test_accuracy", "gap", "epochs"]
    return pd.read_csv(out / "results.csv")[cols].sort_values(["arm", "seed"]).reset_index(drop=True)


def test_an_interrupted_adaptive_study_resumes_to_the_same_rounds_and_results(tmp_path):
    study = tmp_path / "adaptive.toml"
    study.write_text(textwrap.dedent(STUDY))
    straight = ablate("run", study, "--out", tmp_path / "straight")
    log, _ = straight.communicate(timeout=300)
    assert straight.returncode == 0, log
    assert len(rounds_of(log)) >= 2, log  # the second round happened

    first = ablate("run", study, "--out", tmp_path / "resumed")
    seen, in_round_2 = [], 0
    assert first.stdout is not None
    for line in first.stdout:
        seen.append(line)
        in_round_2 += line.startswith("[") and any(s.startswith("round 2") for s in seen)
        if in_round_2 >= 2:  # two runs of round 2 stored: Ctrl-C
            os.killpg(first.pid, signal.SIGINT)
            break
    rest, _ = first.communicate(timeout=120)
    assert first.returncode == 130, "".join(seen) + rest
    again = ablate("run", study, "--out", tmp_path / "resumed")
    log2, _ = again.communicate(timeout=300)
    assert again.returncode == 0, log2
    assert "already stored" in log2
    assert rounds_of(log2) == rounds_of(log)  # the rerun walks the same rounds
    pd.testing.assert_frame_equal(results(tmp_path / "straight"), results(tmp_path / "resumed"))
    assert findings(tmp_path / "resumed") == findings(tmp_path / "straight")
    assert "Adaptive seeds" in findings(tmp_path / "straight")


def findings(out: Path) -> str:
    text = (out / "summary.md").read_text(encoding="utf-8")
    return text[text.index("## Findings") : text.index("## How precise")]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("seeds = { min = 3 }", "study.seeds.max"),
        ("seeds = { min = 5, max = 3 }", "min 5 is above max 3"),
        ("seeds = 3\nmargin = 1.0", "'margin' applies to adaptive seeds only"),
        ("seeds = { min = 3, max = 12 }\nmargin = 0", "study.margin"),
    ],
)
def test_a_bad_seeds_table_or_margin_exits_2_naming_the_key(tmp_path, line, message):
    study = tmp_path / "bad.toml"
    body = textwrap.dedent(STUDY).replace("seeds = { min = 2, max = 6 }\nmargin = 0.1", line)
    study.write_text(body)
    proc = subprocess.run(
        [sys.executable, "-m", "ablate", "plan", study, "--no-calibrate"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_workers_on_postgresql_train_each_round_once_and_reach_the_same_runs(tmp_path, postgres_url):
    """Three workers share the rounds: every run trains once, and the study ends with the
    runs (and results) one `ablate run` on its own reaches."""
    import collections

    import optuna

    from ablate.engine.store import attrs

    study = tmp_path / "adaptive.toml"
    study.write_text(textwrap.dedent(STUDY))
    first = ablate("worker", study, "--storage", postgres_url)
    head = []
    assert first.stdout is not None
    for line in first.stdout:  # the study and its tables exist once its first run is stored
        head.append(line)
        if line.startswith("["):
            break
    workers = [ablate("worker", study, "--storage", postgres_url) for _ in range(2)]
    alone = ablate("run", study, "--out", tmp_path / "alone")
    for proc in [first, *workers, alone]:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, "".join(head) + out
    trials = optuna.load_study(study_name="adaptive", storage=postgres_url).get_trials()
    per_run = collections.Counter(t.user_attrs[attrs.RUN_KEY] for t in trials)
    assert set(per_run.values()) == {1}, per_run
    report = ablate("report", postgres_url, "--study", "adaptive", "--out", tmp_path / "shared")
    out, _ = report.communicate(timeout=120)
    assert report.returncode == 0, out
    pd.testing.assert_frame_equal(results(tmp_path / "shared"), results(tmp_path / "alone"))
    assert len(per_run) == len(results(tmp_path / "alone"))


def test_plan_prints_the_least_and_most_runs_and_seconds(tmp_path):
    study = tmp_path / "adaptive.toml"
    study.write_text(textwrap.dedent(STUDY))
    proc = subprocess.run([sys.executable, "-m", "ablate", "plan", study], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "runs: 4 arms x 2 to 6 seeds = 8 to 24 (adaptive: rounds of 2, 4, 6 seeds per arm" in proc.stdout
    assert "train their 2 seeds of each round as one stacked model" in proc.stdout
    line = next(x for x in proc.stdout.splitlines() if x.startswith("estimated wall time"))
    assert "least ~" in line and "(8 runs), most ~" in line and "(24 runs)" in line
