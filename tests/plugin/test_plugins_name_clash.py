"""A study's plugin file that takes a name another plugin has loads beside it: the
short name is an error only in a study that uses it, which must then say
DIST:NAME (exit 2 before anything trains, naming both qualified names). A plugin
file named twice is still refused."""

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

STOP_FACTOR = '\n[factors.stop]\nkind = "stopping"\nlevels = ["none", "{level}"]\n'


def study_with(tmp_path, plugins: str, extra: str = "") -> str:
    study = tmp_path / "study.toml"
    study.write_text(TINY.replace("seeds = 2", f"seeds = 1\nplugins = {plugins}") + extra)
    return str(study)


def test_a_plugin_file_may_take_a_built_in_name_a_study_does_not_use(tmp_path, run_cli):
    (tmp_path / "clash.py").write_text(textwrap.dedent(TAKES_EARLY_STOPPING))
    study = study_with(tmp_path, '["clash.py"]')
    code, stdout, stderr = run_cli("plan", study)
    assert code == 0, stdout + stderr
    assert "warning" not in stderr and "failed to load" not in stderr
    code, stdout, stderr = run_cli("plugins", "--study", study)
    assert code == 0, stderr
    assert "ablate:early_stopping " in stdout and "clash.py:early_stopping " in stdout
    assert "stopping 'early_stopping' is registered by several plugins" in stdout


def test_a_study_using_the_shared_name_is_told_both_qualified_names(tmp_path, run_cli):
    (tmp_path / "clash.py").write_text(textwrap.dedent(TAKES_EARLY_STOPPING))
    extra = STOP_FACTOR.format(level="early_stopping") + 'early_stopping = { monitor = "val_loss" }\n'
    study = study_with(tmp_path, '["clash.py"]', extra)
    code, stdout, stderr = run_cli("plan", study)
    assert code == 2, stdout + stderr
    lines = stderr.strip().splitlines()
    assert lines[0] == (
        f"error: {study}: factors.stop.levels[1]: stopping 'early_stopping' is registered by 2 plugins: "
        "ablate:early_stopping and clash.py:early_stopping"
    )
    assert "only ablate:early_stopping accepts the parameters given here (monitor)" in stderr
    assert 'change it to: levels = ["none", "ablate:early_stopping"]' in stderr
    assert "Traceback" not in stderr


def test_either_provider_by_its_qualified_name(tmp_path, run_cli):
    (tmp_path / "clash.py").write_text(textwrap.dedent(TAKES_EARLY_STOPPING))
    for level, table in (
        ("clash.py:early_stopping", "patience = 2"),
        ("ablate:early_stopping", 'monitor = "val_loss"'),
    ):
        # the parameter table may keep the short name: only one level of the factor has it
        study = study_with(
            tmp_path, '["clash.py"]', STOP_FACTOR.format(level=level) + f"early_stopping = {{ {table} }}\n"
        )
        code, stdout, stderr = run_cli("plan", study)
        assert code == 0, stderr
        assert level in stdout
    bad = STOP_FACTOR.format(level="clash.py:early_stopping") + 'early_stopping = { monitor = "val_loss" }\n'
    code, _, stderr = run_cli("plan", study_with(tmp_path, '["clash.py"]', bad))
    assert code == 2 and "stopping 'clash.py:early_stopping' has no parameter 'monitor'" in stderr


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
