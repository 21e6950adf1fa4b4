"""What the web pages and the API share: recording a submission, what a candidate may see, the reports.

Recording reuses the queue's own pieces (grader.stages.intake, grader.queue.broker, grader.db.store), in the order
`grader submit` uses them: the source is checked, Redis is pinged before anything is recorded, and a
record whose enqueue failed stays queued with its error for a worker's watchdog to pick up.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from grader.assignments.model import Assignment, AssignmentError, load_assignment
from grader.db.store import Store, SubmissionRecord
from grader.errors import Rejected
from grader.models import GradeReport
from grader.pipeline import new_submission_id
from grader.queue.broker import BrokerUnavailable, connect_redis, enqueue_grading, grading_queue, new_job_id
from grader.settings import Settings
from grader.stages.intake import normalize_source

Enqueue = Callable[[str, str], None]
"""Puts (submission id, job id) on the grading queue; raises BrokerUnavailable when Redis is down."""

STAGE_LABELS = {"intake": "cloning", "build": "building", "boot": "booting", "tests": "testing", "report": "testing"}


class SubmitError(Exception):
    """A submission was refused; `status` is the HTTP status to answer with, the message says why."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def redis_enqueue(settings: Settings) -> Enqueue:
    def enqueue(submission_id: str, job_id: str) -> None:
        enqueue_grading(grading_queue(connect_redis(settings)), submission_id, job_id, settings)

    return enqueue


def check_source(settings: Settings, assignment: str, source: str) -> str:
    """The normalized URL of an acceptable source for a known assignment, or SubmitError."""
    try:
        load_assignment(settings.paths.assignments_dir, assignment)
        url, _transport = normalize_source(source.strip(), settings)
    except AssignmentError as exc:
        raise SubmitError(str(exc), 404) from None
    except Rejected as exc:
        raise SubmitError(exc.reason, 400) from None
    return url


def record_submission(
    store: Store, enqueue: Enqueue, *, url: str, ref: str | None, assignment: str, submitter: str | None
) -> SubmissionRecord:
    """Record and enqueue; the caller has checked the source (check_source) and that Redis answers."""
    submission_id = new_submission_id()
    job_id = new_job_id(submission_id)
    store.create(submission_id, source=url, ref=ref or None, assignment=assignment, submitter=submitter, job_id=job_id)
    try:
        enqueue(submission_id, job_id)
    except Exception as exc:  # as `grader submit`: the record stays queued and a watchdog enqueues it later
        store.note_error(submission_id, f"not enqueued: {exc}; a worker's watchdog enqueues it when Redis is back")
    record = store.get(submission_id)
    assert record is not None
    return record


def regrade_submission(store: Store, enqueue: Enqueue, submission_id: str) -> bool:
    job_id = new_job_id(submission_id)
    if not store.regrade(submission_id, job_id):
        return False
    try:
        enqueue(submission_id, job_id)
    except (BrokerUnavailable, Exception) as exc:
        store.note_error(submission_id, f"not enqueued: {exc}; a worker's watchdog enqueues it when Redis is back")
    return True


def load_report(record: SubmissionRecord) -> GradeReport | None:
    """The record's report, parsed strictly; None when there is none yet or it cannot be read."""
    if not record.final or not record.report_path:
        return None
    try:
        return GradeReport.model_validate_json(Path(record.report_path).read_text())
    except (OSError, ValidationError, ValueError):
        return None


def progress(record: SubmissionRecord) -> str:
    """queued, cloning, building, booting, testing, or the final status (graded, build_failed, ...)."""
    if record.final:
        return record.status.value
    if record.status.value == "running":
        return STAGE_LABELS.get(record.stage.value, "cloning") if record.stage else "cloning"
    return "queued"


def candidate_view(record: SubmissionRecord, assignment: Assignment | None) -> dict[str, Any]:
    """What a candidate may see of a finished grading: the score per category, test names only if allowed."""
    report = load_report(record)
    if report is None:
        return {}
    show_tests = bool(assignment and assignment.candidate_sees_tests)
    categories = []
    for category in report.categories:
        item: dict[str, Any] = {"id": category.id, "title": category.title, "score": category.score,
                                "max_score": category.max_score}
        if show_tests:
            item["tests"] = [{"title": t.title, "outcome": t.outcome.value} for t in category.tests]
        categories.append(item)
    return {"score": report.score, "max_score": report.max_score, "reason": report.reason if report.status.value in (
        "rejected", "build_failed", "boot_failed") else "", "categories": categories}


def status_payload(record: SubmissionRecord, position: int | None) -> dict[str, Any]:
    return {**record.status_json(), "progress": progress(record), "queue_position": position, "final": record.final}


def read_check(settings: Settings, assignment_id: str) -> dict[str, Any] | None:
    """The last `grader assignments check` result of an assignment, as it stored it."""
    try:
        data = json.loads((settings.paths.data_dir / "checks" / f"{assignment_id}.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


SORTS = {"created": "created_at", "score": "score", "status": "status", "submitter": "submitter"}


def list_submissions(store: Store, assignment: str | None, sort: str, descending: bool, limit: int = 500) -> list[SubmissionRecord]:
    """Submissions of one assignment (or all), sorted by one of SORTS."""
    from sqlalchemy import select

    from grader.db.store import submissions

    column = submissions.c[SORTS.get(sort, "created_at")]
    query = select(submissions)
    if assignment:
        query = query.where(submissions.c.assignment == assignment)
    query = query.order_by(column.desc() if descending else column.asc(), submissions.c.created_at.desc()).limit(limit)
    with store.engine.connect() as conn:
        return [SubmissionRecord.model_validate(dict(row)) for row in conn.execute(query).mappings()]
