"""Database fixtures: each test runs on SQLite and on a private PostgreSQL cluster (`postgres_host`, tests/conftest.py;
skipped if not installed)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from grader.db.engine import create_db_engine, open_store
from grader.db.store import Store
from grader.settings import Settings
from tests.postgres import new_database


@pytest.fixture(params=["sqlite", "postgresql"])
def database_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """The test's settings on SQLite (the default) and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return settings
    return settings.replace(database_url=new_database(request.getfixturevalue("postgres_host")))


@pytest.fixture
def store(database_settings: Settings) -> Store:
    return open_store(database_settings)


@pytest.fixture
def database_engine(database_settings: Settings) -> Engine:
    """A database engine on the test's database, not yet migrated."""
    return create_db_engine(database_settings.database_url)
