"""Database fixtures: each test runs on SQLite and on a private PostgreSQL cluster (skipped if not installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine

from grader.db.engine import create_db_engine, open_store
from grader.db.store import Store
from grader.settings import Settings


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


@pytest.fixture(scope="session")
def postgres_host() -> Iterator[str]:
    """A private PostgreSQL cluster listening only on a unix socket in a temporary directory."""
    if not (_tool("initdb") and _tool("pg_ctl")):
        pytest.skip("PostgreSQL (initdb, pg_ctl) is not installed")
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
    if not started:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip("a private PostgreSQL cluster could not be started")
    yield str(folder)
    subprocess.run(_as_postgres_user("pg_ctl", "-D", data, "-m", "immediate", "stop"), capture_output=True, timeout=60)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """The test's settings on SQLite (the default) and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return settings
    host = request.getfixturevalue("postgres_host")
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"host={host} user=grader dbname=postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return settings.replace(database_url=f"postgresql+psycopg://grader@/{name}?host={host}")


@pytest.fixture
def store(database_settings: Settings) -> Store:
    return open_store(database_settings)


@pytest.fixture
def database_engine(database_settings: Settings) -> Engine:
    """A database engine on the test's database, not yet migrated."""
    return create_db_engine(database_settings.database_url)
