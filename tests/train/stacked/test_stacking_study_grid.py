"""A study whose arms differ only in values a stack holds per seat trains as one
stack: a weight decay (SGD's decoupled) x label smoothing grid of 2 x 2 arms with 2
seeds is one stack of 8 (``stacked_with`` in every run record), and each run's
numbers are those of the same study with ``stack = "off"``, per epoch to 1e-5
relative (the stacked-vs-alone tolerance, tests/stacking_support.py)."""

from __future__ import annotations

import json

import optuna
from stacking_support import relative

from ablate.engine.store import attrs

GRID = """
[study]
name = "grid"
seeds = 2
[data]
name = "digits"
[model]
name = "mlp"
hidden = [16]
[train]
epochs = 2
batch_size = 256
optimizer = "sgd"
lr = 0.05
{stack}
[factors.decay]
kind = "regularizer"
levels = ["weight_decay"]
weight_decay = {{ decay = [0.0, 0.1] }}
[factors.smoothing]
kind = "regularizer"
levels = ["label_smoothing"]
label_smoothing = {{ eps = [0.05, 0.2] }}
"""


def _records(tmp_path, run_cli, stack: str) -> dict[str, dict]:
    study = tmp_path / f"grid_{stack}.toml"
    study.write_text(GRID.format(stack=f'stack = "{stack}"'))
    out = tmp_path / f"out_{stack}"
    code, _, err = run_cli("run", study, "--out", out, "--jobs", "1")
    assert code == 0, err
    storage = f"sqlite:///{(out / 'study.db').resolve()}"
    trials = optuna.load_study(study_name="grid", storage=storage).trials
    assert len(json.loads((out / "results.json").read_text())["runs"]) == 8
    records = [t.user_attrs[attrs.RESULT] for t in trials]
    return {json.dumps([r["config"]["components"], r["config"]["seed"]], sort_keys=True): r for r in records}


def test_the_plan_says_the_grid_trains_as_one_stack(tmp_path, registry):
    from ablate.cli.run_command import stacking_lines
    from ablate.engine.planned import study_arms
    from ablate.study.config import load_study

    study = tmp_path / "grid.toml"
    study.write_text(GRID.format(stack=""))
    config = load_study(study, registry)
    lines = stacking_lines(config, registry, study_arms(config, registry))
    assert lines[0] == "stacking: 4 of 4 arms train their 2 seeds as one stacked model"
    assert lines[1].endswith("share a stack: 1 stack") and len(lines) == 2


def test_a_decay_by_smoothing_grid_trains_as_one_stack_with_the_numbers_of_stack_off(tmp_path, run_cli):
    stacked = _records(tmp_path, run_cli, "auto")
    alone = _records(tmp_path, run_cli, "off")
    assert sorted(stacked) == sorted(alone)
    assert [r["stacked_with"] for r in stacked.values()] == [8] * 8
    assert all(r.get("stacked_with", 1) == 1 for r in alone.values())
    for key, run in stacked.items():
        for mine, theirs in zip(run["history"], alone[key]["history"], strict=True):
            for metric in ("train_loss", "val_loss", "running_loss"):
                assert relative(mine[metric], theirs[metric]) <= 1e-5, (key, metric)
    assert len({round(r["metrics"]["train_loss"], 6) for r in alone.values()}) == 8  # every arm and seed differ
