"""Runs stored before a study's plugin file was edited are told apart, as runs of an
upgraded plugin are: a file has no version number, so its text's digest stands for one."""

from __future__ import annotations

import sqlite3

from support import TINY

PENALTY = """
from ablate import Param, hookimpl


class Penalty:
    def __init__(self, coef: float):
        self.coef = coef

    @hookimpl
    def ablate_loss_penalty(self, model):
        return self.coef * sum((p**2).sum() for p in model.parameters()) * SCALE


@hookimpl
def ablate_register_regularizers(registry):
    registry.add("mypen", Penalty, params={"coef": Param(1e-4, low=0.0)})
"""

STUDY = (
    TINY.replace("seeds = 2", 'seeds = 1\nplugins = ["mine.py"]')
    .replace("epochs = 4", "epochs = 1")
    .replace('levels = ["none", "dropout"]\ndropout = { rate = 0.2 }', 'levels = ["none", "mypen"]')
    .replace('levels = ["none", "batchnorm"]', 'levels = ["none"]')
)


def trainings(out) -> int:
    with sqlite3.connect(out / "study.db") as db:
        return db.execute("SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0]


def test_an_edited_plugin_file_is_named_and_retrain_changed_trains_its_runs(tmp_path, run_cli):
    plugin, study, out = tmp_path / "mine.py", tmp_path / "study.toml", tmp_path / "out"
    plugin.write_text(PENALTY.replace("SCALE", "1.0"))
    study.write_text(STUDY)
    assert run_cli("run", study, "--out", out)[0] == 0 and trainings(out) == 2
    code, stdout, _ = run_cli("run", study, "--out", out)
    assert code == 0 and "other plugin versions" not in stdout  # nothing changed yet

    plugin.write_text(PENALTY.replace("SCALE", "100.0"))
    code, stdout, _ = run_cli("run", study, "--out", out)
    assert code == 0 and trainings(out) == 2
    assert (
        "1 stored run(s) were trained with other plugin versions (regularizer:mine.py:mypen: file:mine.py sha256:"
        in stdout
    )
    assert "--retrain-changed trains them again" in stdout
    code, stdout, _ = run_cli("run", study, "--out", out, "--retrain-changed")
    assert code == 0 and trainings(out) == 3  # only the run that uses the file
    assert "[2/2]" in stdout and "[3/2]" not in stdout  # the progress counts the run trained again
    code, stdout, _ = run_cli("run", study, "--out", out)
    assert "other plugin versions" not in stdout  # the newest training counts


def test_runs_stored_before_files_had_digests_are_not_called_changed(tmp_path, run_cli):
    import json

    plugin, study, out = tmp_path / "mine.py", tmp_path / "study.toml", tmp_path / "out"
    plugin.write_text(PENALTY.replace("SCALE", "1.0"))
    study.write_text(STUDY)
    assert run_cli("run", study, "--out", out)[0] == 0
    with sqlite3.connect(out / "study.db") as db:  # as an earlier version stored it: the file's name alone
        for trial_id, value in db.execute(
            "SELECT trial_id, value_json FROM trial_user_attributes WHERE key = 'result'"
        ).fetchall():
            result = json.loads(value)
            if "plugin:regularizer:mypen" in result["versions"]:
                result["versions"]["plugin:regularizer:mypen"] = "file:mine.py"
                db.execute(
                    "UPDATE trial_user_attributes SET value_json = ? WHERE trial_id = ? AND key = 'result'",
                    (json.dumps(result), trial_id),
                )
    code, stdout, _ = run_cli("run", study, "--out", out)
    assert code == 0 and "other plugin versions" not in stdout and trainings(out) == 2
