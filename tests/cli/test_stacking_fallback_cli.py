"""A stack that breaks trains its runs alone: the console line and the stored
run record say so and why, so a slow study is not a mystery."""

from __future__ import annotations

import optuna
from stacking_support import PLUGIN
from support import TINY

from ablate.engine.store import attrs

STUDY = (
    TINY.replace("seeds = 2", f'seeds = 2\nplugins = ["{PLUGIN}"]')
    .replace('levels = ["none", "batchnorm"]', 'levels = ["none", "late_broken_scalenorm"]')
    .replace('levels = ["none", "dropout"]\ndropout = { rate = 0.2 }', 'levels = ["none"]')
)


def test_runs_whose_stack_broke_say_why_they_trained_alone(tmp_path, run_cli):
    (tmp_path / "study.toml").write_text(STUDY)
    code, stdout, _ = run_cli("run", tmp_path / "study.toml", "--out", tmp_path / "out")
    assert code == 0
    why = "trained alone: its stack failed in training (RuntimeError: this stacked form breaks late)"
    assert stdout.count(why) == 2, stdout
    storage = f"sqlite:///{(tmp_path / 'out' / 'study.db').resolve()}"
    trials = optuna.load_study(study_name="tiny", storage=storage).trials
    records = [t.user_attrs[attrs.RESULT] for t in trials]
    broken = [r for r in records if "unstacked" in r]
    assert len(broken) == 2 and all(r["stacked_with"] == 1 for r in broken)
    assert all(r["unstacked"].startswith("its stack failed in training") for r in broken)
    assert sum(r["stacked_with"] == 2 for r in records) == 2  # the baseline's seeds stacked
