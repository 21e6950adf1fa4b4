"""Fixtures shared by the grader's own tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from grader.settings import PROJECT_ROOT, Settings
from tests import postgres

REFERENCE = PROJECT_ROOT / "assignments" / "flask-notes" / "solutions" / "reference"
_OURS = ("GRADER_", "REDIS_URL", "DATABASE_URL")


@pytest.fixture(autouse=True)
def _clean_environment() -> Iterator[None]:
    """Each test starts without the grader's variables of the shell that ran pytest, and any variable a test
    sets or removes is put back afterwards: no test's settings leak into the next one."""
    saved = dict(os.environ)
    for name in [name for name in os.environ if name.startswith(_OURS)]:
        del os.environ[name]
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def postgres_host() -> Iterator[str]:
    """A private PostgreSQL cluster on a unix socket (tests/postgres.py), for the session; its folder is the libpq
    host. Skipped where PostgreSQL is not installed."""
    if not postgres.installed():
        pytest.skip("PostgreSQL (initdb, pg_ctl) is not installed")
    with postgres.private_cluster() as host:
        if host is None:
            pytest.skip("a private PostgreSQL cluster could not be started")
        yield host


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temporary directory with a short path, since unix socket paths are limited to about 100 bytes."""
    path = Path(tempfile.mkdtemp(prefix="gt-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def settings(short_tmp: Path) -> Settings:
    """Settings writing only into a temporary directory."""
    return Settings(data_dir=short_tmp / "var", reports_dir=short_tmp / "reports")


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@localhost", *args],
        cwd=cwd, check=True, capture_output=True, text=True,
    ).stdout.strip()


@pytest.fixture
def git_repo(short_tmp: Path) -> Callable[..., Path]:
    """Make a local git repository from a source folder and/or a dict of files; returns its path."""
    counter = iter(range(1000))

    def make(source: Path | None = None, files: dict[str, str] | None = None, branch: str = "main") -> Path:
        repo = short_tmp / f"repo{next(counter)}"
        if source is not None:
            shutil.copytree(source, repo, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.db"))
        repo.mkdir(exist_ok=True)
        for name, text in (files or {}).items():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            (repo / name).write_text(text)
        _git(repo, "init", "-q", "-b", branch)
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", "submission")
        return repo

    return make


@pytest.fixture
def git() -> Callable[..., str]:
    """Run git in a directory with a throwaway identity."""
    return _git
