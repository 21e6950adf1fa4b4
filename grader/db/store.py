"""The submissions store: the truth about every submission, whatever Redis holds or lost.

Every change of a record that two processes could race on is one compare-and-set UPDATE whose WHERE
clause names the state it expects (`status`, the RQ `job_id`, the `lease_token`); the row count says
whether this process won. A worker takes a lease when it starts grading and only the holder of the
current lease may move the stage or write the result, so a submission delivered twice (RQ delivers at
least once) is graded once in its record. The table is in grader.db.schema; the database engine and the
migrations are grader.db.engine's (`open_store(settings)`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator
from sqlalchemy import Engine, delete, func, select, update

from grader.db.schema import candidate_links, submissions, webhook_deliveries
from grader.models import Stage, Status

FINAL_STATUSES = (Status.graded, Status.rejected, Status.build_failed, Status.boot_failed, Status.infra_error)


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

    @field_validator("stage", mode="before")
    @classmethod
    def _stored_stage(cls, value: object) -> object:
        """A row not yet migrated by 0004 may still say `tests` for the suite."""
        return Stage.parse(value) if isinstance(value, str) else value

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
    """Reads and compare-and-set writes of submission records; the database engine is passed in."""

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

    def queue_position(self, submission_id: str) -> int | None:
        """1 for the next queued submission to be graded; None when this one is not queued."""
        with self.engine.connect() as conn:
            mine = conn.execute(
                select(submissions.c.created_at, submissions.c.status).where(submissions.c.id == submission_id)
            ).first()
            if mine is None or mine.status != Status.queued.value:
                return None
            ahead = conn.execute(
                select(func.count()).select_from(submissions).where(
                    (submissions.c.status == Status.queued.value) & (submissions.c.created_at < mine.created_at))
            ).scalar()
        return int(ahead or 0) + 1

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

    def delete(self, submission_id: str) -> bool:
        """Remove a finished record with its candidate's link and its webhook deliveries; False if not finished."""
        finished = (submissions.c.id == submission_id) & submissions.c.status.in_([s.value for s in FINAL_STATUSES])
        with self.engine.begin() as conn:
            if conn.execute(delete(submissions).where(finished)).rowcount != 1:
                return False
            conn.execute(delete(candidate_links).where(candidate_links.c.submission_id == submission_id))
            conn.execute(delete(webhook_deliveries).where(webhook_deliveries.c.submission_id == submission_id))
        return True
