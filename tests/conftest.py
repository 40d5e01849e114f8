"""Shared fixtures: a fresh plugin manager and registry per test, tiny studies."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ablate.cli import main
from ablate.manager import build_registry, make_plugin_manager

TINY = """
[study]
name = "tiny"
question = "Does dropout help a tiny MLP on digits?"
seeds = 2

[data]
name = "digits"

[model]
name = "mlp"
hidden = [32]

[train]
epochs = 4
batch_size = 128

[factors.norm]
kind = "norm"
levels = ["none", "batchnorm"]

[factors.dropout]
kind = "regularizer"
levels = ["none", "dropout"]
dropout = { rate = 0.2 }
"""


@pytest.fixture
def tiny() -> str:
    """A tiny real study (2 x 2 arms, 2 seeds, 4 epochs on digits) as TOML text."""
    return TINY


@pytest.fixture
def pm():
    return make_plugin_manager()


@pytest.fixture
def registry(pm):
    return build_registry(pm)


@pytest.fixture
def write_study(tmp_path):
    """Write a study file (dedented) and return its path."""

    def write(text: str = TINY, name: str = "study.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def run_cli(capsys):
    """Run the CLI in-process; return (exit code, stdout, stderr)."""

    def run(*args: str):
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
