"""Shared fixtures: a fresh plugin manager and registry per test, tiny studies."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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


@contextlib.contextmanager
def _postgres(auth: str = "trust", password: str | None = None) -> Iterator[tuple[int, Callable[[str], None]]]:
    """A PostgreSQL server on loopback in a temporary data directory: (port, run SQL
    as the superuser over its socket); skipped where Debian's postgresql package is not
    installed. ``auth``: how TCP connections authenticate; ``password``: the superuser's."""
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)")
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data = Path(tempfile.mkdtemp(prefix="ablate-pg-"))
    if as_postgres:
        shutil.chown(data, "postgres", "postgres")
    port = _free_port()
    init = [*as_postgres, str(bindir / "initdb"), "-D", str(data / "db"), "-U", "postgres"]
    if password is None:
        init.append(f"--auth={auth}")
    else:  # the socket stays trusted: only this fixture uses it, to create users and databases
        (data / "pw").write_text(password + "\n")
        if as_postgres:
            shutil.chown(data / "pw", "postgres", "postgres")
        init += [f"--auth-host={auth}", "--auth-local=trust", f"--pwfile={data / 'pw'}"]
    subprocess.run(init, check=True, capture_output=True)
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

    def sql(statement: str) -> None:
        subprocess.run(
            [*as_postgres, str(bindir / "psql"), "-h", str(data), "-p", str(port), "-U", "postgres", "-c", statement],
            check=True,
            capture_output=True,
        )

    try:
        yield port, sql
    finally:
        subprocess.run(
            [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data / "db"), "-m", "fast", "-w", "stop"],
            capture_output=True,
        )
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server that trusts every connection, for the session."""
    with _postgres() as (port, sql):
        sql("CREATE DATABASE ablate")
        yield f"postgresql://postgres@127.0.0.1:{port}/ablate"


@dataclass(frozen=True)
class PasswordServer:
    """A PostgreSQL server that asks for passwords (SCRAM, as a shared server does)."""

    port: int
    user: str
    password: str
    database: str

    def url(self, password: str | None = None) -> str:
        """postgresql://USER[:PASSWORD]@127.0.0.1:PORT/DB"""
        secret = f":{password}" if password else ""
        return f"postgresql://{self.user}{secret}@127.0.0.1:{self.port}/{self.database}"


@pytest.fixture(scope="session")
def postgres_password():
    """A second server, for the session, where TCP logins need a password: user "abl"
    owns database "abl"; the trusted server of postgres_url is unchanged."""
    with _postgres("scram-sha-256", password="Sup3rUserPw-x91") as (port, sql):
        server = PasswordServer(port, "abl", "S3cretPW-4f7Kq", "abl")
        sql(f"CREATE ROLE {server.user} LOGIN PASSWORD '{server.password}'")
        sql(f"CREATE DATABASE {server.database} OWNER {server.user}")
        yield server
