"""The SQLAlchemy database engine of the grader's database: made, tuned for SQLite, and migrated to head.

SQLite in the data directory by default, PostgreSQL when `DATABASE_URL` says so. The schema is Alembic's
(grader/db/migrations), upgraded by `migrate()` whenever a process opens the database; processes that start
together take turns (a file lock beside a SQLite database, an advisory lock on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.sql import Executable

from grader.db.store import Store
from grader.filelock import exclusive
from grader.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_PG_MIGRATION_LOCK = 7140251


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside the one writer; the busy timeout makes writers wait, not fail."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_db_engine(url: str) -> Engine:
    """The database engine of `url`; a SQLite file's folder is made, and every connection gets the pragmas."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    database_engine = create_engine(url, connect_args={"timeout": 30})
    event.listen(database_engine, "connect", _sqlite_pragmas)
    return database_engine


@contextmanager
def _migration_lock(database_engine: Engine) -> Iterator[None]:
    """Workers start together: one of them upgrades the schema while the others wait."""
    database = database_engine.url.database
    if database_engine.url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        yield
        return
    with exclusive(Path(f"{database}.migrate.lock")):
        yield


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(database_engine: Engine, revision: str = "head") -> None:
    """`alembic upgrade <revision>` (head by default), run on a connection of the database engine."""
    _run(database_engine, lambda config: command.upgrade(config, revision))


def downgrade(database_engine: Engine, revision: str) -> None:
    """`alembic downgrade <revision>`: for tests of a migration's way back, and for an operator's."""
    _run(database_engine, lambda config: command.downgrade(config, revision))


def _run(database_engine: Engine, step: Callable[[Config], None]) -> None:
    config = _alembic_config()
    with _migration_lock(database_engine), database_engine.begin() as conn:
        if database_engine.url.get_backend_name() == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
        config.attributes["connection"] = conn
        step(config)


def open_database(settings: Settings) -> Engine:
    """The database engine of `settings.database_url`, its schema upgraded to the newest migration."""
    database_engine = create_db_engine(settings.database_url)
    migrate(database_engine)
    return database_engine


def open_store(settings: Settings) -> Store:
    """The submissions store over `open_database(settings)`."""
    return Store(open_database(settings))


def first_row(database_engine: Engine, query: Executable) -> dict[str, Any] | None:
    """The first row of a query as a dict, or None: the one-row read every record class makes."""
    with database_engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    return dict(row) if row else None
