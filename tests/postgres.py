"""A private PostgreSQL cluster for tests: initdb and pg_ctl on a unix socket in a temporary folder, no TCP port.

The store's tests (tests/unit/db/) and the three-host simulation (tests/integration/test_three_hosts.py) share it
through the `postgres_host` fixture of tests/conftest.py; each test makes a fresh database with `new_database`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg


def _tool(name: str) -> str | None:
    """A PostgreSQL server program: on PATH, or where Debian's `postgresql` package puts it."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(versions[-1]) if versions else None


def _as_postgres_user(program: str, *args: str) -> list[str]:
    """PostgreSQL refuses to run as root; as root, run its tools as `nobody`."""
    command = [_tool(program) or program, *args]
    return ["runuser", "-u", "nobody", "--", *command] if os.geteuid() == 0 else command


def installed() -> bool:
    return bool(_tool("initdb") and _tool("pg_ctl"))


@contextmanager
def private_cluster() -> Iterator[str | None]:
    """Start a cluster (user `grader`, trust) listening only on a socket; yield its folder (the libpq host), or None
    when it could not be started. Stopped and removed on exit."""
    folder = Path(tempfile.mkdtemp(prefix="pg-", dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(folder, "nobody")
    data = str(folder / "data")
    started = subprocess.run(
        _as_postgres_user("initdb", "-D", data, "-A", "trust", "-U", "grader"), capture_output=True, timeout=120
    ).returncode == 0 and subprocess.run(
        _as_postgres_user("pg_ctl", "-D", data, "-o", f"-k {folder} -c listen_addresses=''", "-l", str(folder / "log"),
                          "-w", "start"), capture_output=True, timeout=120,
    ).returncode == 0
    try:
        yield str(folder) if started else None
    finally:
        if started:
            subprocess.run(_as_postgres_user("pg_ctl", "-D", data, "-m", "immediate", "stop"), capture_output=True,
                           timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def new_database(host: str) -> str:
    """A fresh, empty database of the cluster at `host`; its SQLAlchemy URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"host={host} user=grader dbname=postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"postgresql+psycopg://grader@/{name}?host={host}"
