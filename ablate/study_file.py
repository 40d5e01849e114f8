"""Reading a study file before anything heavy is imported: its TOML and the
plugin files it names (the command line starts worker processes with them
before it imports torch)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from ablate.errors import UserError


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
