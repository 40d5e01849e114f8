"""More bad input told as exit-2 errors naming the file and key: a plugin file's syntax
error at its own line, a plugin that exits while imported, a factor without levels, and
a --storage folder that does not exist (blamed on --out before)."""

from __future__ import annotations

from support import TINY


def write(tmp_path, text: str, plugin: str | None = None) -> str:
    if plugin is not None:
        (tmp_path / "mine.py").write_text(plugin)
        text = text.replace("seeds = 2", 'seeds = 2\nplugins = ["mine.py"]')
    study = tmp_path / "study.toml"
    study.write_text(text)
    return str(study)


def test_a_plugin_syntax_error_names_its_own_file_and_line(tmp_path, run_cli):
    study = write(tmp_path, TINY, plugin="x = 1\ndef broken(:\n")
    code, _, stderr = run_cli("plan", study, "--no-calibrate")
    assert code == 2
    assert f"SyntaxError: invalid syntax (at {tmp_path / 'mine.py'}:2)" in stderr
    assert "frozen importlib" not in stderr


def test_a_plugin_that_exits_while_imported_is_a_user_error(tmp_path, run_cli):
    study = write(tmp_path, TINY, plugin="import sys\nsys.exit(3)\n")
    code, _, stderr = run_cli("plan", study, "--no-calibrate")
    assert code == 2
    assert f"error: {study}: study.plugins: plugin file" in stderr and "it called sys.exit(3)" in stderr


def test_a_factor_without_levels_says_they_are_missing(tmp_path, run_cli):
    study = write(tmp_path, TINY.replace('levels = ["none", "batchnorm"]\n', ""))
    code, _, stderr = run_cli("plan", study, "--no-calibrate")
    assert code == 2
    assert "factors.norm.levels: missing levels" in stderr and "None" not in stderr


def test_a_storage_folder_that_does_not_exist_is_blamed_on_storage(tmp_path, run_cli):
    url = f"sqlite:///{tmp_path / 'nowhere' / 'x.db'}"
    code, _, stderr = run_cli("run", write(tmp_path, TINY), "--out", tmp_path / "out", "--storage", url)
    assert code == 2
    assert f"--storage: cannot write the database {tmp_path / 'nowhere' / 'x.db'}" in stderr
    assert "does not exist" in stderr and "--out" not in stderr
