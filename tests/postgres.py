"""A throwaway PostgreSQL server for the tests: Debian's own binaries, a cluster in a temporary folder, a free
loopback port, stopped and removed afterwards. Never the machine's own cluster, never a skip: where the server is
not installed the tests that need it fail with the line that says how to install it."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from tests import watchdog

INSTALL_LINE = ("PostgreSQL's server is not installed, so the reading store's PostgreSQL tests cannot run: "
                "apt-get install postgresql (.ci/run does it)")


def server_bin() -> Path | None:
    """The folder of initdb and pg_ctl: on PATH, else Debian's newest /usr/lib/postgresql/N/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """``initdb`` and ``pg_ctl`` on a temporary folder; as the ``postgres`` user when the tests run as root
    (initdb refuses root)."""

    def __init__(self):
        bin_dir = server_bin()
        if bin_dir is None:
            pytest.fail(INSTALL_LINE, pytrace=False)
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="bcir-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "bcir", "--auth=trust", "-E", "UTF8", "--no-instructions")
        self.start()
        watchdog.on_hang(self.remove)

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([*self.as_user, str(self.bin / tool), *args], capture_output=True, text=True,
                                timeout=120)
        if check and result.returncode != 0:
            raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stderr.strip()[-800:]}")
        return result

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
                   "-c fsync=on -c max_connections=60")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "server.log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def url(self, dbname: str) -> str:
        return f"postgresql://bcir@127.0.0.1:{self.port}/{dbname}"

    def new_database(self) -> str:
        """A fresh, empty database on this server; its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def remove(self) -> None:
        watchdog.forget(self.remove)
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


__all__ = ["Cluster", "INSTALL_LINE", "free_port", "server_bin"]
