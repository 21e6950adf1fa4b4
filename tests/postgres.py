"""A private PostgreSQL cluster for tests: initdb and pg_ctl on a unix socket in a temporary folder, no TCP port.

The store's tests (tests/unit/db/) and the three-host simulation (tests/integration/test_three_hosts.py) share it
through the `postgres_host` fixture of tests/conftest.py; each test makes a fresh database with `new_database`.
bench/burst.py starts its own with more connections, and must have it (`must_start`).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Mapping
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
def private_cluster(server_options: Mapping[str, object] | None = None, must_start: bool = False) -> Iterator[str | None]:
    """Start a cluster (user `grader`, trust) listening only on a socket; yield its folder (the libpq host), or None
    when it could not be started; with `must_start`, raise RuntimeError saying why instead (as the benches want).
    `server_options` are extra server settings, e.g. {"max_connections": 200}. Stopped and removed on exit."""
    if must_start and not installed():
        raise RuntimeError("PostgreSQL's initdb and pg_ctl are not installed (apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="pg-", dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(folder, "nobody")
    data = str(folder / "data")
    options = " ".join([f"-k {folder} -c listen_addresses=''", *(f"-c {k}={v}" for k, v in (server_options or {}).items())])
    failure = _first_failure(folder, _as_postgres_user("initdb", "-D", data, "-A", "trust", "-U", "grader"),
                             _as_postgres_user("pg_ctl", "-D", data, "-o", options, "-l", str(folder / "log"), "-w", "start"))
    started = failure is None
    try:
        if failure is not None and must_start:
            raise RuntimeError(f"a private PostgreSQL cluster could not be started in {folder}: {failure}")
        yield str(folder) if started else None
    finally:
        if started:
            subprocess.run(_as_postgres_user("pg_ctl", "-D", data, "-m", "immediate", "stop"), capture_output=True,
                           timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def _first_failure(folder: Path, *commands: list[str]) -> str | None:
    """Run `commands` in turn until one fails; what it and the server's log said, or None when all succeeded."""
    for command in commands:
        done = subprocess.run(command, capture_output=True, timeout=120)
        if done.returncode != 0:
            log = folder / "log"
            said = (done.stderr or done.stdout).decode(errors="replace").strip()[-2000:]
            tail = log.read_text(errors="replace").strip()[-2000:] if log.exists() else ""
            return f"{shlex.join(command)} exited with {done.returncode}: {said}" + (f"\nserver log: {tail}" if tail else "")
    return None


def new_database(host: str) -> str:
    """A fresh, empty database of the cluster at `host`; its SQLAlchemy URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"host={host} user=grader dbname=postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"postgresql+psycopg://grader@/{name}?host={host}"
