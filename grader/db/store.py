"""The submissions database: the truth about every submission, whatever Redis holds or lost.

Every change of a record that two processes could race on is one compare-and-set UPDATE whose WHERE
clause names the state it expects (`status`, the RQ `job_id`, the `lease_token`); the row count says
whether this process won. A worker takes a lease when it starts grading and only the holder of the
current lease may move the stage or write the result, so a submission delivered twice (RQ delivers at
least once) is graded once in its record. SQLite in the data directory by default, PostgreSQL when
`DATABASE_URL` says so; the schema is Alembic's, upgraded at start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from pydantic import BaseModel, ConfigDict
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    select,
    update,
)
from sqlalchemy.engine import make_url

from grader.filelock import exclusive
from grader.models import Stage, Status
from grader.settings import Settings

FINAL_STATUSES = (Status.graded, Status.rejected, Status.build_failed, Status.boot_failed, Status.infra_error)
_MIGRATIONS = Path(__file__).resolve().parent / "migrations"

metadata = MetaData()
submissions = Table(
    "submissions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("source", Text, nullable=False),
    Column("ref", String(255)),
    Column("assignment", String(64), nullable=False),
    Column("submitter", String(255)),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("stage", String(16)),
    Column("report_path", Text),
    Column("score", Float),
    Column("max_score", Float),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("job_id", String(64)),
    Column("owner", String(255)),
    Column("lease_token", String(64)),
    Column("started_at", DateTime),
    Column("finished_at", DateTime),
)


def utcnow() -> datetime:
    """Naive UTC, since SQLite keeps no time zone and comparisons must agree across databases."""
    return datetime.now(UTC).replace(tzinfo=None)


class SubmissionRecord(BaseModel):
    """One row of `submissions`, as read at one moment."""

    model_config = ConfigDict(frozen=True)

    id: str
    source: str
    ref: str | None
    assignment: str
    submitter: str | None
    created_at: datetime
    updated_at: datetime
    status: Status
    stage: Stage | None
    report_path: str | None
    score: float | None
    max_score: float | None
    attempts: int
    last_error: str | None
    job_id: str | None
    owner: str | None
    lease_token: str | None
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    def status_json(self) -> dict[str, Any]:
        """The public shape of `grader status --json`: exactly these keys; score and report once done."""
        return {
            "id": self.id,
            "status": self.status.value,
            "stage": self.stage.value if self.stage else None,
            "attempts": self.attempts,
            "score": self.score if self.final else None,
            "max_score": self.max_score if self.final else None,
            "report": self.report_path if self.final else None,
        }


class Store:
    """Reads and compare-and-set writes of submission records; the engine is passed in."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- reads -----------------------------------------------------------------------------------

    def get(self, submission_id: str) -> SubmissionRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(submissions).where(submissions.c.id == submission_id)).mappings().first()
        return SubmissionRecord.model_validate(dict(row)) if row else None

    def running(self) -> list[SubmissionRecord]:
        return self._select(submissions.c.status == Status.running.value)

    def stale_queued(self, before: datetime, limit: int = 200) -> list[SubmissionRecord]:
        """Queued records untouched since `before`: candidates for a lost or never-made Redis job."""
        return self._select(
            (submissions.c.status == Status.queued.value) & (submissions.c.updated_at < before), limit=limit
        )

    def _select(self, where: Any, limit: int | None = None) -> list[SubmissionRecord]:
        query = select(submissions).where(where).order_by(submissions.c.updated_at).limit(limit)
        with self.engine.connect() as conn:
            return [SubmissionRecord.model_validate(dict(row)) for row in conn.execute(query).mappings()]

    # --- writes ----------------------------------------------------------------------------------

    def create(
        self, submission_id: str, *, source: str, ref: str | None, assignment: str, submitter: str | None, job_id: str
    ) -> SubmissionRecord:
        now = utcnow()
        values = dict(
            id=submission_id, source=source, ref=ref, assignment=assignment, submitter=submitter,
            created_at=now, updated_at=now, status=Status.queued.value, attempts=0, job_id=job_id,
        )
        with self.engine.begin() as conn:
            conn.execute(submissions.insert().values(**values))
        record = self.get(submission_id)
        assert record is not None
        return record

    def _cas(self, submission_id: str, where: Any, **values: Any) -> bool:
        """One compare-and-set UPDATE; True when this process changed the row."""
        statement = update(submissions).where((submissions.c.id == submission_id) & where)
        with self.engine.begin() as conn:
            return conn.execute(statement.values(updated_at=utcnow(), **values)).rowcount == 1

    def acquire(self, submission_id: str, job_id: str, owner: str, token: str) -> bool:
        """Take the lease: only a queued record whose current job is this one moves to running."""
        return self._cas(
            submission_id,
            (submissions.c.status == Status.queued.value) & (submissions.c.job_id == job_id),
            status=Status.running.value, stage=None, owner=owner, lease_token=token,
            attempts=submissions.c.attempts + 1, started_at=utcnow(), finished_at=None,
        )

    def _held(self, token: str) -> Any:
        return (submissions.c.status == Status.running.value) & (submissions.c.lease_token == token)

    def set_stage(self, submission_id: str, token: str, stage: Stage) -> bool:
        """Record progress; False means the lease was lost and the grading should stop."""
        return self._cas(submission_id, self._held(token), stage=stage.value)

    def release(self, submission_id: str, token: str, error: str) -> bool:
        """Give the lease back for a retry of the same job (an infra_error with tries left)."""
        return self._cas(
            submission_id, self._held(token),
            status=Status.queued.value, stage=None, owner=None, lease_token=None, last_error=error,
        )

    def requeue(self, submission_id: str, token: str, job_id: str, error: str) -> bool:
        """Take a dead worker's lease away and hand the submission to a new job."""
        return self._cas(
            submission_id, self._held(token),
            status=Status.queued.value, stage=None, owner=None, lease_token=None, job_id=job_id, last_error=error,
        )

    def give_up(self, submission_id: str, token: str, error: str) -> bool:
        """A submission whose gradings keep dying ends as infra_error instead of looping."""
        return self._cas(
            submission_id, self._held(token),
            status=Status.infra_error.value, lease_token=None, last_error=error, finished_at=utcnow(),
        )

    def finish(
        self,
        submission_id: str,
        token: str,
        *,
        status: Status,
        score: float,
        max_score: float,
        report_path: str | None,
        error: str | None,
        publish: Callable[[], None] = lambda: None,
    ) -> bool:
        """Write the result if this lease is still current; `publish` runs inside the same transaction.

        `publish` moves the report into place: it runs only for the winner, and while the row is locked,
        so a loser never overwrites the report; if it raises, the record stays running.
        """
        statement = (
            update(submissions)
            .where((submissions.c.id == submission_id) & self._held(token))
            .values(
                status=status.value, score=score, max_score=max_score, report_path=report_path,
                lease_token=None, updated_at=utcnow(), finished_at=utcnow(),
                **({"last_error": error} if error else {}),
            )
        )
        with self.engine.begin() as conn:
            if conn.execute(statement).rowcount != 1:
                return False
            publish()
        return True

    def regrade(self, submission_id: str, job_id: str) -> bool:
        """Queue a finished submission again; a queued or running one is left alone."""
        return self._cas(
            submission_id, submissions.c.status.in_([s.value for s in FINAL_STATUSES]),
            status=Status.queued.value, stage=None, attempts=0, job_id=job_id, owner=None, lease_token=None,
            score=None, max_score=None, report_path=None, last_error=None, started_at=None, finished_at=None,
        )

    def replace_job(self, submission_id: str, old_job_id: str | None, new_job_id: str) -> bool:
        """Point a queued record at a new Redis job, unless someone else already did."""
        same = submissions.c.job_id.is_(None) if old_job_id is None else submissions.c.job_id == old_job_id
        return self._cas(submission_id, (submissions.c.status == Status.queued.value) & same, job_id=new_job_id)

    def note_error(self, submission_id: str, error: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(submissions).where(submissions.c.id == submission_id).values(last_error=error, updated_at=utcnow())
            )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside the one writer; the busy timeout makes writers wait, not fail."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_db_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Workers start together: one of them upgrades the schema while the others wait."""
    database = engine.url.database
    if engine.url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        yield
        return
    with exclusive(Path(f"{database}.migrate.lock")):
        yield


def migrate(engine: Engine) -> None:
    """`alembic upgrade head`, run programmatically on the engine's own connection."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with _migration_lock(engine), engine.begin() as conn:
        if engine.url.get_backend_name() == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7140251)")
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def open_store(settings: Settings) -> Store:
    """The store of `settings.database_url`, its schema upgraded to the newest migration."""
    engine = create_db_engine(settings.database_url)
    migrate(engine)
    return Store(engine)
