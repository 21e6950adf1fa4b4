"""Submit, status, regrade and delete: the one service the CLI, the web pages and the API call.

Submitting is `check_source` (the assignment exists and the source is acceptable), then `record_submission`
(the record first, then the RQ job; a record whose job could not be enqueued stays queued with its error, and
a worker's watchdog enqueues it once Redis is back). `regrade_submission` queues a finished submission again.
What callers show of a record is `progress` (one word of STAGE_LABELS), `status_payload` and, once graded,
`load_report` or a candidate's trimmed `candidate_view`. A refusal is a `SubmitError` carrying the HTTP
status to answer with (the CLI maps it to its exit codes). Nothing here imports the web app.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import select

from grader.assignments.model import Assignment, AssignmentError, load_assignment
from grader.cohort.files import remove_kept
from grader.cohort.store import CohortStore
from grader.db.schema import submissions
from grader.db.store import Store, SubmissionRecord
from grader.errors import Rejected
from grader.models import STAGE_LABELS, GradeReport, Stage, Status
from grader.pipeline import new_submission_id
from grader.queue.broker import connect_redis, enqueue_grading, grading_queue, new_job_id
from grader.settings import Settings
from grader.stages.intake import normalize_source
from grader.storage import Storage, check_result_key, is_legacy_path, open_storage, read_stored, report_folder, snapshot_key

Enqueue = Callable[[str, str], None]
"""Puts (submission id, job id) on the grading queue; raises (BrokerUnavailable, a RedisError) when it cannot."""

PROGRESS_WORDS: tuple[str, ...] = ("queued", *(stage.progress for stage in STAGE_LABELS), "graded")
"""The steps a status page shows, in order: queued, each stage's progress word, then the end."""

SORTS = {"created": "created_at", "score": "score", "status": "status", "submitter": "submitter"}
"""How a listing of submissions may be sorted: the query word and its column."""

_NOT_ENQUEUED = "not enqueued: {}; a worker's watchdog enqueues it when Redis is back"


class SubmitError(Exception):
    """A submission or regrade was refused; `status` is the HTTP status to answer with, the message says why.

    404: no such assignment (check_source) or submission (regrade_submission); 400: the source is refused;
    409: the submission is not finished, so there is nothing to regrade (or delete) yet.
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Queued(BaseModel):
    """A submission just recorded (or re-recorded for a regrade) and whether its job reached the queue."""

    model_config = ConfigDict(frozen=True)

    record: SubmissionRecord
    enqueue_error: str | None = None

    @property
    def enqueued(self) -> bool:
        return self.enqueue_error is None


def redis_enqueue(settings: Settings, connection: redis.Redis | None = None) -> Enqueue:
    """Enqueue on `connection` (the CLI pings Redis before recording), or connect at each call (the web app)."""

    def enqueue(submission_id: str, job_id: str) -> None:
        queue = grading_queue(connection if connection is not None else connect_redis(settings))
        enqueue_grading(queue, submission_id, job_id, settings)

    return enqueue


def check_source(settings: Settings, assignment: str, source: str) -> str:
    """The normalized URL of an acceptable source for a known assignment, or SubmitError (404, 400)."""
    try:
        load_assignment(settings.paths.assignments_dir, assignment)
        url, _transport = normalize_source(source.strip(), settings)
    except AssignmentError as exc:
        raise SubmitError(str(exc), 404) from None
    except Rejected as exc:
        raise SubmitError(exc.reason, 400) from None
    return url


def _enqueue(store: Store, enqueue: Enqueue, submission_id: str, job_id: str) -> Queued:
    error = None
    try:
        enqueue(submission_id, job_id)
    except Exception as exc:  # the record stays queued and says why; a worker's watchdog enqueues it later
        error = str(exc)
        store.note_error(submission_id, _NOT_ENQUEUED.format(error))
    record = store.get(submission_id)
    assert record is not None
    return Queued(record=record, enqueue_error=error)


def record_submission(
    store: Store, enqueue: Enqueue, *, url: str, ref: str | None, assignment: str, submitter: str | None
) -> Queued:
    """Record a new submission and enqueue its grading; `url` is what check_source returned."""
    submission_id = new_submission_id()
    job_id = new_job_id(submission_id)
    store.create(submission_id, source=url, ref=ref or None, assignment=assignment, submitter=submitter, job_id=job_id)
    return _enqueue(store, enqueue, submission_id, job_id)


def regrade_submission(store: Store, enqueue: Enqueue, submission_id: str) -> Queued:
    """Queue a new grading of a finished submission; SubmitError 404 if unknown, 409 if not finished."""
    record = store.get(submission_id)
    if record is None:
        raise SubmitError(f"no submission {submission_id!r}", 404)
    job_id = new_job_id(submission_id)
    if not store.regrade(submission_id, job_id):
        current = store.get(submission_id) or record
        raise SubmitError(f"{submission_id} is {current.status.value}; it will be graded without a regrade", 409)
    return _enqueue(store, enqueue, submission_id, job_id)


def delete_submission(settings: Settings, store: Store, submission_id: str, storage: Storage | None = None) -> None:
    """Remove a submission everywhere: its record, its reports, its kept code and every comparison naming it.

    A submission graded by `grader grade` has no record but may be in the cohort: it is deleted the same way.
    SubmitError 404 when it is unknown, 409 while it is queued or running (delete it once it is finished).
    """
    storage = storage or open_storage(settings)
    cohort = CohortStore(store.engine)
    record, member = store.get(submission_id), cohort.member(submission_id)
    if record is None and member is None:
        raise SubmitError(f"no submission {submission_id!r}", 404)
    if record is not None and not store.delete(submission_id):
        raise SubmitError(f"{submission_id} is being graded; delete it once it is finished", 409)
    cohort.delete(submission_id)
    storage.delete_tree(report_folder(submission_id))
    reports = settings.paths.reports_dir.resolve()
    for path in (record.report_path if record else None, member.report_path if member else None):
        if path and is_legacy_path(path):  # a row of before the storage seam: its folder, only inside reports_dir
            folder = Path(path).resolve().parent
            if folder.is_relative_to(reports) and folder != reports and folder.name == submission_id:
                shutil.rmtree(folder, ignore_errors=True)
    remove_kept(member.snapshot_path if member else None, storage, settings.paths.snapshots_dir)
    remove_kept(snapshot_key(submission_id), storage, settings.paths.snapshots_dir)


def load_report(record: SubmissionRecord, storage: Storage) -> GradeReport | None:
    """The record's report, read from storage and parsed strictly; None when there is none yet or it cannot be read."""
    if not record.final or not record.report_path:
        return None
    data = read_stored(storage, record.report_path)
    if data is None:
        return None
    try:
        return GradeReport.model_validate_json(data)
    except (ValidationError, ValueError):
        return None


def progress(record: SubmissionRecord) -> str:
    """One word of PROGRESS_WORDS: queued, the running stage's word (cloning, building, ...), or the final
    status (graded, build_failed, ...)."""
    if record.final:
        return record.status.value
    if record.status is Status.running:
        return (record.stage or Stage.intake).progress
    return "queued"


def status_payload(record: SubmissionRecord, position: int | None) -> dict[str, Any]:
    """`grader status --json`'s keys, plus progress, the place in the queue (`Store.queue_position`) and final."""
    return {**record.status_json(), "progress": progress(record), "queue_position": position, "final": record.final}


def candidate_view(record: SubmissionRecord, assignment: Assignment | None, storage: Storage) -> dict[str, Any]:
    """What a candidate may see of a finished grading: the score per category and, in the brief's words, where each
    fell short (the rubric lines of the lost tests); the counts of their own tests; the verdict when it names no
    hidden test. Never evidence, reproduction lines, review findings or interview questions; test names only if
    the assignment allows."""
    report = load_report(record, storage)
    if report is None:
        return {}
    show_tests = bool(assignment and assignment.candidate_sees_tests)
    lost = report.summary.lost if report.summary else []
    categories = []
    for category in report.categories:
        item: dict[str, Any] = {"id": category.id, "title": category.title, "score": category.score,
                                "max_score": category.max_score,
                                "fell_short": list(dict.fromkeys(t.rubric for t in lost if t.category == category.id and t.rubric))}
        if show_tests:
            item["tests"] = [{"title": t.title, "outcome": t.outcome.value} for t in category.tests]
        categories.append(item)
    explained = report.status in (Status.rejected, Status.build_failed, Status.boot_failed)
    own = report.candidate_tests
    return {"score": report.score, "max_score": report.max_score, "reason": report.reason if explained else "",
            "verdict": _verdict_for_candidate(report, show_tests), "categories": categories,
            "own_tests": None if own is None else own.model_dump(
                mode="json", include={"ran", "passed", "failed", "errors", "skipped", "coverage_percent", "note"})}


def _verdict_for_candidate(report: GradeReport, show_tests: bool) -> str:
    """The verdict, or "" when it names what the candidate may not see: a hidden test (its id, function or title,
    unless allowed) or a review finding (its rule or file)."""
    if report.summary is None:
        return ""
    verdict = report.summary.verdict.casefold()
    secret: set[str] = set()
    if not show_tests:
        for test in (t for c in report.categories for t in c.tests):
            secret.update((test.id, *test.id.split("::"), test.title))
        secret.update(t.test for t in report.summary.lost)
    for finding in report.review.findings if report.review else []:
        secret.update((finding.rule, finding.file))
    return "" if any(len(word) >= 4 and word.casefold() in verdict for word in secret) else report.summary.verdict


def read_check(storage: Storage, assignment_id: str) -> dict[str, Any] | None:
    """The last `grader assignments check` result of an assignment, as it stored it (`checks/<id>.json`)."""
    try:
        data = json.loads(storage.get(check_result_key(assignment_id)) or b"null")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def list_submissions(
    store: Store, assignment: str | None, sort: str, descending: bool, limit: int = 500
) -> list[SubmissionRecord]:
    """Submissions of one assignment (or all), sorted by one of SORTS (created when the word is unknown)."""
    column = submissions.c[SORTS.get(sort, "created_at")]
    query = select(submissions)
    if assignment:
        query = query.where(submissions.c.assignment == assignment)
    query = query.order_by(column.desc() if descending else column.asc(), submissions.c.created_at.desc()).limit(limit)
    with store.engine.connect() as conn:
        return [SubmissionRecord.model_validate(dict(row)) for row in conn.execute(query).mappings()]
