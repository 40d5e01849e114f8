"""Shared fixtures: a fresh plugin manager and registry per test, tiny studies."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from support import TINY

from ablate.cli import main
from ablate.plugin.manager import build_registry, make_plugin_manager


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


def _postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return found[-1].parent if found else None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server on loopback in a temporary data directory, for
    the session; skipped where Debian's postgresql package is not installed."""
    import os
    import shutil
    import subprocess
    import tempfile

    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)")
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data = Path(tempfile.mkdtemp(prefix="ablate-pg-"))
    if as_postgres:
        shutil.chown(data, "postgres", "postgres")
    port = _free_port()
    subprocess.run(
        [*as_postgres, str(bindir / "initdb"), "-D", str(data / "db"), "-U", "postgres", "--auth=trust"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *as_postgres,
            str(bindir / "pg_ctl"),
            "-D",
            str(data / "db"),
            "-l",
            str(data / "log"),
            "-o",
            f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c max_connections=200",
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        subprocess.run(
            [
                *as_postgres,
                str(bindir.parent / "bin" / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "postgres",
                "ablate",
            ],
            check=True,
            capture_output=True,
        )
        yield f"postgresql://postgres@127.0.0.1:{port}/ablate"
    finally:
        subprocess.run(
            [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data / "db"), "-m", "fast", "-w", "stop"],
            capture_output=True,
        )
        shutil.rmtree(data, ignore_errors=True)
