"""Reading a study file before anything heavy is imported: its TOML and the
plugin files it names (the command line starts worker processes with them
before it imports torch)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ablate.errors import UserError
from ablate.plugin.manager import build_registry, make_plugin_manager

if TYPE_CHECKING:
    from ablate.plugin.registry import Registry


def read_toml(path: Path) -> dict[str, Any]:
    """Parse the file; a syntax error names the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError("study file not found", where=str(path), expected="a path to an existing .toml file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the study file: {exc}", where=str(path)) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"invalid TOML: {exc}", where=str(path), hint="see https://toml.io for the syntax") from None


def plugin_files_of(path: str | Path) -> list[Path]:
    """The plugin files a study names, resolved against the study's folder."""
    path = Path(path)
    raw = read_toml(path)
    try:
        study = as_table(raw.get("study", {}), "study")
        files = study.get("plugins", [])
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise UserError(f"{files!r} is not valid", key="study.plugins", expected="a list of paths to .py files")
    except UserError as err:
        raise err.located(str(path)) from None
    return [(path.parent / f) for f in files]


def as_table(value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UserError(f"{value!r} is not a table", key=key, expected=f"a [{key}] table")
    return value


def study_registry(study: Path | None) -> Registry:
    """The registry a study sees: the installed plugins and the plugin files it names
    (none without a study). A plugin file's error is told with the study that names it."""
    # every installed plugin loads here, not when a worker reads the study file

    try:
        return build_registry(make_plugin_manager(plugin_files_of(study) if study is not None else []))
    except UserError as err:
        raise (err.located(str(study)) if study is not None else err) from None
