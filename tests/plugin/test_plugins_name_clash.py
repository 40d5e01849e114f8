"""A study's plugin file that takes a name another plugin has, or a plugin file named
twice: exit 2 before anything trains, naming the study, both plugins and the name.
Before, the file's component silently replaced the built-in one, and every other
built-in of its plugin vanished with a warning."""

from __future__ import annotations

import textwrap

from support import TINY

TAKES_EARLY_STOPPING = """
from ablate import Param, hookimpl


class Stopper:
    def __init__(self, patience: int):
        self.patience = patience

    @hookimpl
    def ablate_epoch_end(self, state):
        return None


@hookimpl
def ablate_register_stopping_rules(registry):
    registry.add("early_stopping", Stopper, params={"patience": Param(5)})
"""


def study_with(tmp_path, plugins: str) -> str:
    study = tmp_path / "study.toml"
    study.write_text(TINY.replace("seeds = 2", f"seeds = 1\nplugins = {plugins}"))
    return str(study)


def test_a_plugin_file_cannot_take_a_built_in_name(tmp_path, run_cli):
    (tmp_path / "clash.py").write_text(textwrap.dedent(TAKES_EARLY_STOPPING))
    study = study_with(tmp_path, '["clash.py"]')
    code, stdout, stderr = run_cli("plan", study)
    assert code == 2, stdout + stderr
    first = stderr.strip().splitlines()[0]
    assert first.startswith(f"error: {study}: study.plugins: ")
    assert "stopping 'early_stopping' is registered twice" in first
    assert "'ablate:stopping'" in first and "'file:clash.py'" in first
    assert "failed to load" not in stderr  # the built-in plugin is not the one blamed
    assert "Traceback" not in stderr


def test_the_built_ins_keep_their_names_when_a_file_adds_others(tmp_path, run_cli):
    (tmp_path / "mine.py").write_text(textwrap.dedent(TAKES_EARLY_STOPPING.replace('"early_stopping"', '"patient"')))
    code, stdout, stderr = run_cli("plugins", "--study", study_with(tmp_path, '["mine.py"]'), "early_stopping")
    assert code == 0, stderr
    assert "[ablate:stopping]" in stdout and "warning" not in stderr


def test_a_plugin_file_listed_twice_is_refused(tmp_path, run_cli):
    (tmp_path / "mine.py").write_text("")
    study = study_with(tmp_path, '["mine.py", "./mine.py"]')
    code, _, stderr = run_cli("plan", study)
    assert code == 2
    assert f"{study}: study.plugins: plugin file" in stderr and "is listed twice" in stderr


def test_two_plugin_files_of_one_name_are_refused(tmp_path, run_cli):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "mine.py").write_text("")
    code, _, stderr = run_cli("plan", study_with(tmp_path, '["a/mine.py", "b/mine.py"]'))
    assert code == 2
    assert "have the same name" in stderr and "distinct file names" in stderr
