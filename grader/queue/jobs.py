"""The grading job that RQ runs in a worker: take the lease, grade, publish only while holding it.

Delivery is at least once (a job can be retried, re-enqueued by a watchdog, or left over from before a
Redis restart), so the job first takes the record's lease with a compare-and-set: a job that is not the
record's current one, or whose record is not queued, does nothing. The pipeline writes its report into
a staging prefix of this lease in storage (`reports/.staging/<token>/<id>`); it is copied to `reports/<id>/`
(each file written whole) inside the transaction that writes the result, and only its commit makes the record
final, so a grading that lost its lease never overwrites the winner's report.

Candidate faults (rejected, build_failed, boot_failed) are results. An infra_error is retried by RQ
with back-off (the job raises RetryGrading) until the last try, which records it.
"""

from __future__ import annotations

import logging
import uuid
from contextvars import ContextVar
from dataclasses import dataclass

import redis
from rq import get_current_job
from rq.job import Job
from rq.timeouts import JobTimeoutException

from grader.assignments.model import assignment_or_none
from grader.cohort.place import place_graded
from grader.db.store import Store, SubmissionRecord
from grader.errors import InfraError
from grader.models import GradeReport, Stage, Status, SubmissionRequest
from grader.pipeline import grade_submission
from grader.settings import Settings
from grader.stages.regrade import compare_with_earlier, earlier_report
from grader.stages.report import SIBLINGS, infra_report, store_report
from grader.storage import REPORTS, Storage, open_storage, report_folder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerContext:
    """What a job needs from the worker process that runs it; RQ passes a job only its arguments."""

    settings: Settings
    store: Store
    owner: str = ""
    storage: Storage | None = None
    """Where reports and kept code go; None: the one `settings.storage` names."""


_context: ContextVar[WorkerContext] = ContextVar("grader_worker_context")


def bind_context(context: WorkerContext) -> None:
    """Called once by a worker process (grader.queue.workers) before it takes jobs."""
    _context.set(context)


class RetryGrading(Exception):
    """An infra_error with tries left: raised so that RQ schedules the retry with its back-off."""


class LeaseLost(Exception):
    """Another delivery took the submission over; this grading stops and writes nothing."""


def grade_job(submission_id: str) -> str:
    """The RQ entry point (grader.queue.jobs.grade_job); returns what happened, for RQ's result."""
    try:
        context = _context.get()
    except LookupError:
        raise RuntimeError("grade_job runs only in `grader worker`, which binds its context") from None
    job = get_current_job()
    assert job is not None
    token = uuid.uuid4().hex
    if not context.store.acquire(submission_id, job.id, context.owner, token):
        record = context.store.get(submission_id)
        state = f"{record.status.value}, current job {record.job_id}" if record else "no such record"
        log.info("job %s: skipped, %s is not queued for this job (%s)", job.id, submission_id, state)
        return "skipped"
    record = context.store.get(submission_id)
    assert record is not None
    return run_grading(record, token, job, context)


def run_grading(record: SubmissionRecord, token: str, job: Job, context: WorkerContext) -> str:
    """Grade a record whose lease this process holds, then record the result if the lease is still ours."""
    settings, store = context.settings, context.store
    storage = context.storage or open_storage(settings)
    staging_root = f"{REPORTS}/.staging/{token}"
    staging, final = f"{staging_root}/{record.id}", report_folder(record.id)
    request = SubmissionRequest(id=record.id, source=record.source, ref=record.ref, assignment=record.assignment)

    def on_stage(stage: Stage) -> None:
        try:
            job.meta["stage"] = stage.value
            job.save_meta()
        except redis.RedisError as exc:  # progress is a nicety; the record below is the truth
            log.warning("job %s: stage not saved in Redis: %s", job.id, exc)
        if not store.set_stage(record.id, token, stage):
            raise LeaseLost(f"{record.id} was taken over while {stage.value} ran")

    report: GradeReport | None = None
    try:
        report = grade_submission(request, settings, on_stage=on_stage, keep_code=settings.paths.keeping_dir / record.id)
        report = compare_with_earlier(report, earlier_report(storage, final))  # a regrade keeps what it replaced
        report = place_graded(report, settings, store.engine, storage, report_path=f"{final}/report.json")
        error = report.reason if report.status is Status.infra_error else None
        store_report(report, storage, staging, pdf=settings.report.pdf)
    except LeaseLost as exc:
        log.warning("job %s: %s; its result is dropped", job.id, exc)
        storage.delete_tree(staging_root)
        return "lease lost"
    except JobTimeoutException:
        error = f"the grading job exceeded its time limit of {settings.timeouts.job_limit_s:.0f} s"
    except Exception as exc:  # a bug or an outage of ours, never the candidate's: an infra_error
        log.exception("job %s: grading %s failed", job.id, record.id)
        error = f"the grader failed: {type(exc).__name__}: {exc}"
    if error is not None and job.retries_left and record.attempts < settings.queue.max_attempts:
        storage.delete_tree(staging_root)
        if store.release(record.id, token, error):
            raise RetryGrading(f"{record.id}: infra_error, retried: {error}")
        return "lease lost"
    if report is None:
        report = _infra_report(request, settings, error or "unknown failure", storage, staging)
    won = store.finish(
        record.id, token, status=report.status, score=report.score, max_score=report.max_score,
        report_path=f"{final}/report.json", error=error, publish=lambda: publish_report(storage, staging, final),
    )
    storage.delete_tree(staging_root)
    if not won:
        log.warning("job %s: %s was taken over; its result is dropped", job.id, record.id)
        return "lease lost"
    return report.status.value


def _infra_report(request: SubmissionRequest, settings: Settings, reason: str, storage: Storage, staging: str) -> GradeReport:
    """A report for a grading that ended without one (job timeout, a crash of ours), so status points to one."""
    report = infra_report(request, assignment_or_none(settings.paths.assignments_dir, request.assignment), reason)
    store_report(report, storage, staging, pdf=settings.report.pdf)
    return report


def publish_report(storage: Storage, source: str, dest: str) -> None:
    """Copy the staged report files to `reports/<id>/`, each written whole, report.json last; an export this
    grading did not write (its PDF failed) is removed, so no file of an earlier grading stays."""
    staged = storage.list(source)
    if "report.json" not in staged:
        raise InfraError(f"the staged report {source}/report.json is missing from {storage!r}")
    for name in sorted(staged, key=lambda name: name == "report.json"):
        data = storage.get(f"{source}/{name}")
        if data is None:
            raise InfraError(f"the staged report file {source}/{name} vanished from {storage!r}")
        storage.put(f"{dest}/{name}", data)
    for name in set(SIBLINGS.values()) - set(staged):
        storage.delete(f"{dest}/{name}")
