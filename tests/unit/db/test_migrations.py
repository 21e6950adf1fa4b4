"""The database engine and the migrations: upgraded at every start, matching the declared tables, and each step."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import inspect, select

from grader.db.engine import downgrade, migrate, open_store
from grader.db.schema import submissions
from grader.db.store import utcnow
from grader.settings import Settings


def test_each_database_is_the_one_it_claims(database_settings, database_engine):
    """The PostgreSQL parameter really reaches PostgreSQL (a settings copy once kept them all on SQLite)."""
    assert database_engine.dialect.name == database_settings.database_url.split(":", 1)[0].split("+", 1)[0]


def test_migrations_create_the_table_once(database_settings):
    """Opening the store twice runs `alembic upgrade head` twice without harm; the table and version exist."""
    open_store(database_settings)
    store = open_store(database_settings)
    tables = set(inspect(store.engine).get_table_names())
    assert {"submissions", "alembic_version"} <= tables


def test_default_database_is_sqlite_in_the_data_dir(settings):
    """Without DATABASE_URL the records live in data_dir/grader.db."""
    open_store(settings)
    assert Path(settings.paths.data_dir / "grader.db").is_file()


def test_database_url_setting():
    """DATABASE_URL is read through its alias; plain postgres URLs get the psycopg driver; others are refused."""
    assert Settings(DATABASE_URL="postgres://u@h/db").database_url == "postgresql+psycopg://u@h/db"
    assert Settings(GRADER_DATABASE_URL="sqlite:////tmp/x.db").database_url == "sqlite:////tmp/x.db"
    assert Settings(data_dir=Path("/d")).database_url == "sqlite:////d/grader.db"
    with pytest.raises(ValidationError, match="not supported"):
        Settings(DATABASE_URL="mysql://u@h/db")


def test_migrations_build_exactly_the_declared_tables(store):
    """The Alembic history at its head matches every table grader.db.schema declares (the web app's too)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from grader.db.schema import metadata

    with store.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []


def test_0004_renames_the_stored_tests_stage_to_suite_and_back(database_engine):
    """Upgrading past 0004 turns a stored `tests` stage into `suite`; downgrading to 0003 turns it back."""
    migrate(database_engine, "0003")
    with database_engine.begin() as conn:
        for submission_id, stage in (("s-old", "tests"), ("s-build", "build")):
            conn.execute(submissions.insert().values(
                id=submission_id, source="file:///r", assignment="tiny", created_at=utcnow(), updated_at=utcnow(),
                status="running", stage=stage, attempts=1))

    def stages() -> dict[str, str]:
        with database_engine.connect() as conn:
            return {row.id: row.stage for row in conn.execute(select(submissions.c.id, submissions.c.stage))}

    migrate(database_engine)
    assert stages() == {"s-old": "suite", "s-build": "build"}
    downgrade(database_engine, "0003")
    assert stages() == {"s-old": "tests", "s-build": "build"}
