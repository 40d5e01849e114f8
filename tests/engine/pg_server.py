"""A PostgreSQL server of a test's own on loopback (Debian's postgresql package),
which the test may stop and start: the fault tests restart it under workers.
As root it runs as the postgres user (runuser)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return found[-1].parent if found else None


class PgServer:
    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.data = Path(tempfile.mkdtemp(prefix="ablate-faults-pg-"))
        if self.as_postgres:
            shutil.chown(self.data, "postgres", "postgres")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self._run("initdb", "-D", str(self.data / "db"), "-U", "postgres", "--auth=trust")
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.as_postgres, str(self.bindir / tool), *args], check=True, capture_output=True)

    def _ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data / "db"), *args)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c max_connections=200"
        self._ctl("-l", str(self.data / "log"), "-o", options, "-w", "start")

    def stop(self) -> None:
        """A fast shutdown: sessions are terminated, as in a failover or a maintenance restart."""
        self._ctl("-m", "fast", "-w", "stop")

    def database(self, name: str) -> str:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        subprocess.run(
            [*self.as_postgres, str(self.bindir / "pg_ctl"), "-D", str(self.data / "db"), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(self.data, ignore_errors=True)
