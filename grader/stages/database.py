"""The grader's own SQL on a pod's PostgreSQL, for the hidden tests: as its superuser, on the app's database,
through the pod's forward (grader/sandbox/services.py), with psycopg on the grader's side.

`sql` runs statements in one transaction and returns the rows of the last one. A *held* session keeps its
transaction open across requests (a `LOCK TABLE` that the app's writes wait on while a test looks at `pg_locks`),
until it is released or the database is replaced. Values come back as JSON can carry them: decimals and dates
as text.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

import psycopg

from grader.models import Pod
from grader.sandbox.services import PG_PORT

CONNECT_TIMEOUT_S = 10


def _plain(value: Any) -> Any:
    if isinstance(value, decimal.Decimal | datetime.date | datetime.time | datetime.timedelta | uuid.UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    return value


def _rows(cursor: psycopg.Cursor[Any]) -> list[list[Any]]:
    return [[_plain(v) for v in row] for row in cursor.fetchall()] if cursor.description else []


class PodDatabase:
    """SQL and held sessions on one pod's database; `reset` when the pod gets a new one."""

    def __init__(self, pod: Pod, statement_timeout_s: float) -> None:
        self.pod = pod
        self.statement_timeout_ms = int(statement_timeout_s * 1000)
        self._held: dict[str, psycopg.Connection[Any]] = {}

    def _connect(self, *, autocommit: bool) -> psycopg.Connection[Any]:
        pod = self.pod
        if pod.database_socket_dir is None or pod.database is None:
            raise AssertionError("this app has no PostgreSQL database")
        return psycopg.connect(
            host=str(pod.database_socket_dir), port=PG_PORT, user="postgres", password=pod.superuser_password,
            dbname=pod.database.name, connect_timeout=CONNECT_TIMEOUT_S, autocommit=autocommit,
            options=f"-c statement_timeout={self.statement_timeout_ms}", application_name="grader",
        )

    def sql(self, pairs: list[tuple[str, list[object]]]) -> list[list[object]]:
        """Statements (with `%s` parameters) in one transaction, committed; the rows of the last one."""
        try:
            with self._connect(autocommit=False) as conn, conn.cursor() as cursor:
                rows: list[list[object]] = []
                for statement, params in pairs:
                    cursor.execute(statement.encode(), params or None)
                    rows = _rows(cursor)
                return rows
        except psycopg.Error as exc:
            raise AssertionError(f"SQL on the app's database failed: {exc}") from None

    def hold(self, name: str, statement: str, params: list[object]) -> list[list[object]]:
        """Run a statement in the named session, opened on first use, its transaction left open."""
        try:
            conn = self._held.get(name) or self._held.setdefault(name, self._connect(autocommit=False))
            with conn.cursor() as cursor:
                cursor.execute(statement.encode(), params or None)
                return _rows(cursor)
        except psycopg.Error as exc:
            self.release(name)
            raise AssertionError(f"SQL in held session {name!r} failed: {exc}") from None

    def release(self, name: str, commit: bool = False) -> None:
        """End the named session: its transaction committed or rolled back (its locks go either way)."""
        conn = self._held.pop(name, None)
        if conn is None:
            return
        try:
            conn.commit() if commit else conn.rollback()
        except psycopg.Error:
            pass
        finally:
            conn.close()

    def reset(self, pod: Pod) -> None:
        """The pod's database changed (a restart on a fresh one): the old sessions end."""
        for name in list(self._held):
            self.release(name)
        self.pod = pod
