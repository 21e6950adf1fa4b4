"""The queue's commands: `grader submit`, `status`, `worker` and `regrade`.

Exit codes: 0 done; 1 unknown submission or nothing to do; 2 invalid input (unknown assignment, source
refused); 3 our machinery is unavailable (Redis unreachable, database failure).
"""

from __future__ import annotations

import json

import typer
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from grader.assignments.model import AssignmentError, load_assignment
from grader.db.store import Store, SubmissionRecord, open_store
from grader.errors import Rejected
from grader.pipeline import new_submission_id
from grader.queue.broker import BrokerUnavailable, connect_redis, enqueue_grading, grading_queue, new_job_id, redis_url
from grader.settings import Settings
from grader.stages.intake import normalize_source

EXIT_UNKNOWN = 1
EXIT_INVALID = 2
EXIT_INFRA = 3
_STAGE_LABELS = {
    "intake": "fetching the repository",
    "build": "building the image",
    "boot": "booting the app",
    "tests": "running the hidden tests",
    "report": "writing the report",
}


def _fail(message: str, code: int) -> typer.Exit:
    Console(stderr=True).print(f"[red]error:[/red] {message}", soft_wrap=True, markup=True, highlight=False)
    return typer.Exit(code)


def _store(settings: Settings) -> Store:
    try:
        return open_store(settings)
    except SQLAlchemyError as exc:
        raise _fail(f"the database at {settings.database_url} is not usable: {exc}", EXIT_INFRA) from None


def submit(
    source: str = typer.Argument(..., help="Repository URL (https://, ssh://, git@) or a local path."),
    assignment: str = typer.Option(..., "--assignment", "-a", help="Assignment id, e.g. flask-notes."),
    ref: str | None = typer.Option(None, help="Branch, tag or commit to grade."),
    submitter: str | None = typer.Option(None, help="Who submitted it (name or e-mail), kept in the record."),
) -> None:
    """Record a submission and queue it for grading; prints its id."""
    settings = Settings()
    try:
        load_assignment(settings.paths.assignments_dir, assignment)
        url, _transport = normalize_source(source, settings)
    except AssignmentError as exc:
        raise _fail(str(exc), EXIT_INVALID) from None
    except Rejected as exc:
        raise _fail(exc.reason, EXIT_INVALID) from None
    try:
        connection = connect_redis(settings)  # first, so that nothing is recorded that could not be queued
    except BrokerUnavailable as exc:
        raise _fail(exc.reason, EXIT_INFRA) from None
    store = _store(settings)
    submission_id = new_submission_id()
    job_id = new_job_id(submission_id)
    store.create(submission_id, source=url, ref=ref, assignment=assignment, submitter=submitter, job_id=job_id)
    try:
        enqueue_grading(grading_queue(connection), submission_id, job_id, settings)
    except Exception as exc:  # Redis went away after the PING: the record stays queued and says so
        store.note_error(submission_id, f"not enqueued: {exc}; a worker's watchdog enqueues it when Redis is back")
        typer.echo(submission_id)
        raise _fail(f"{submission_id} recorded but not enqueued ({exc}); a worker will enqueue it later", EXIT_INFRA) from None
    typer.echo(submission_id)


def status(
    submission_id: str = typer.Argument(..., help="The id `grader submit` printed."),
    as_json: bool = typer.Option(False, "--json", help="Print id, status, stage, attempts, score, max_score, report."),
) -> None:
    """Show a submission's status, its current stage and, when done, its report and score."""
    record = _store(Settings()).get(submission_id)
    if record is None:
        raise _fail(f"no submission {submission_id!r}; `grader submit` prints the ids", EXIT_UNKNOWN)
    if as_json:
        typer.echo(json.dumps(record.status_json()))
        return
    typer.echo(describe(record))


def describe(record: SubmissionRecord) -> str:
    """One or two lines for a person: what is happening, or how it ended."""
    attempts = f", attempt {record.attempts}" if record.attempts > 1 else ""
    if record.status.value == "running":
        stage = _STAGE_LABELS.get(record.stage.value, record.stage.value) if record.stage else "starting"
        return f"{record.id}: running ({stage}){attempts}"
    if record.status.value == "queued":
        note = f"; last error: {record.last_error}" if record.last_error else ""
        return f"{record.id}: queued{attempts}{note}"
    lines = [f"{record.id}: {record.status.value}, score {record.score or 0:g} / {record.max_score or 0:g}{attempts}"]
    if record.status.value == "infra_error" and record.last_error:
        lines.append(f"  last error: {record.last_error}")
    if record.report_path:
        lines.append(f"  report: {record.report_path}")
    return "\n".join(lines)


def worker(
    burst: bool = typer.Option(False, "--burst", help="Quit when the queue is empty."),
    concurrency: int = typer.Option(1, "--concurrency", "-c", min=1, help="Worker processes to run."),
) -> None:
    """Run worker processes that take submissions off the queue and grade them."""
    from grader.queue.workers import run_workers

    settings = Settings()
    try:
        connect_redis(settings)
    except BrokerUnavailable as exc:
        raise _fail(exc.reason, EXIT_INFRA) from None
    _store(settings).engine.dispose()  # upgrade the schema once, before the processes start
    code = run_workers(settings.replace(redis_url=redis_url(settings)), concurrency, burst)
    raise typer.Exit(code)


def regrade(submission_id: str = typer.Argument(..., help="The submission to grade again.")) -> None:
    """Queue a new grading of a finished submission (its record and report are replaced when done)."""
    settings = Settings()
    try:
        connection = connect_redis(settings)
    except BrokerUnavailable as exc:
        raise _fail(exc.reason, EXIT_INFRA) from None
    store = _store(settings)
    record = store.get(submission_id)
    if record is None:
        raise _fail(f"no submission {submission_id!r}", EXIT_UNKNOWN)
    job_id = new_job_id(submission_id)
    if not store.regrade(submission_id, job_id):
        raise _fail(f"{submission_id} is {record.status.value}; it will be graded without a regrade", EXIT_UNKNOWN)
    try:
        enqueue_grading(grading_queue(connection), submission_id, job_id, settings)
    except Exception as exc:
        store.note_error(submission_id, f"not enqueued: {exc}; a worker's watchdog enqueues it when Redis is back")
        raise _fail(f"{submission_id} recorded for regrading but not enqueued ({exc})", EXIT_INFRA) from None
    typer.echo(submission_id)


def register(app: typer.Typer) -> None:
    """Add the queue's commands to the `grader` app (one line in grader/cli.py)."""
    for command in (submit, status, worker, regrade):
        app.command()(command)
