"""The queue's commands: `grader submit`, `status`, `worker` and `regrade`, over the one submissions service.

Exit codes (grader.cli.helpers): 0 done; 1 unknown submission or nothing to regrade; 2 invalid input (unknown
assignment, source refused); 3 our machinery is unavailable (Redis unreachable, database failure, not enqueued).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import typer

from grader.cli.helpers import (
    EXIT_FAILED,
    EXIT_INFRA,
    EXIT_REJECTED,
    configure_logging,
    fail,
    infra_errors,
    load_settings,
    log_settings,
    open_store_or_fail,
)
from grader.db.store import SubmissionRecord
from grader.models import Status
from grader.queue.broker import connect_redis, redis_url
from grader.settings import Settings
from grader.storage import is_legacy_path, open_storage
from grader.storage.local import LocalStorage
from grader.submissions import (
    SubmitError,
    check_source,
    delete_submission,
    record_submission,
    redis_enqueue,
    regrade_submission,
)


def submit(
    source: str = typer.Argument(..., help="Repository URL (https://, ssh://, git@) or a local path."),
    assignment: str = typer.Option(..., "--assignment", "-a", help="Assignment id, e.g. flask-notes."),
    ref: str | None = typer.Option(None, help="Branch, tag or commit to grade."),
    submitter: str | None = typer.Option(None, help="Who submitted it (name or e-mail), kept in the record."),
) -> None:
    """Record a submission and queue it for grading; prints its id."""
    settings = load_settings()
    try:
        url = check_source(settings, assignment, source)
    except SubmitError as exc:
        raise fail(exc.message, EXIT_REJECTED) from None
    with infra_errors():
        connection = connect_redis(settings)  # first, so that nothing is recorded that could not be queued
    store = open_store_or_fail(settings)
    queued = record_submission(store, redis_enqueue(settings, connection), url=url, ref=ref, assignment=assignment,
                               submitter=submitter)
    submission_id = queued.record.id
    typer.echo(submission_id)
    if not queued.enqueued:  # Redis went away after the PING: the record stays queued and says so
        raise fail(f"{submission_id} recorded but not enqueued ({queued.enqueue_error}); a worker will enqueue it later",
                   EXIT_INFRA)


def status(
    submission_id: str = typer.Argument(..., help="The id `grader submit` printed."),
    as_json: bool = typer.Option(False, "--json", help="Print id, status, stage, attempts, score, max_score, report."),
) -> None:
    """Show a submission's status, its current stage and, when done, its report and score."""
    settings = load_settings()
    record = open_store_or_fail(settings).get(submission_id)
    if record is None:
        raise fail(f"no submission {submission_id!r}; `grader submit` prints the ids", EXIT_FAILED)
    if as_json:
        typer.echo(json.dumps(record.status_json()))  # the record's own fields; the API's status_payload adds its own
        return
    typer.echo(describe(record, where=report_location(settings)))


def report_location(settings: Settings) -> Callable[[str], str]:
    """How a person finds a report's key: the file on this disk with the local storage, else the key itself."""
    storage = open_storage(settings)
    if not isinstance(storage, LocalStorage):
        return str
    return lambda key: key if is_legacy_path(key) else str(storage.path(key))


def describe(record: SubmissionRecord, where: Callable[[str], str] = str) -> str:
    """One or two lines for a person: what is happening, or how it ended (`where` says where its report is)."""
    attempts = f", attempt {record.attempts}" if record.attempts > 1 else ""
    if record.status is Status.running:
        stage = record.stage.description if record.stage else "starting"
        return f"{record.id}: running ({stage}){attempts}"
    if record.status is Status.queued:
        note = f"; last error: {record.last_error}" if record.last_error else ""
        return f"{record.id}: queued{attempts}{note}"
    lines = [f"{record.id}: {record.status.value}, score {record.score or 0:g} / {record.max_score or 0:g}{attempts}"]
    if record.status is Status.infra_error and record.last_error:
        lines.append(f"  last error: {record.last_error}")
    if record.report_path:
        lines.append(f"  report: {where(record.report_path)}")
    return "\n".join(lines)


def worker(
    burst: bool = typer.Option(False, "--burst", help="Quit when the queue is empty."),
    concurrency: int = typer.Option(1, "--concurrency", "-c", min=1, help="Worker processes to run."),
) -> None:
    """Run worker processes that take submissions off the queue and grade them."""
    from grader.queue.hosts import refuse_sqlite_across_hosts
    from grader.queue.workers import run_workers

    settings = load_settings(log_level=None)
    with infra_errors():
        refuse_sqlite_across_hosts(settings, connect_redis(settings))
    open_store_or_fail(settings).engine.dispose()  # upgrade the schema once, before the processes start
    settings = settings.replace(redis_url=redis_url(settings))
    configure_logging()  # as run_workers would; after the upgrade, whose migration lines stay quiet here
    log_settings(settings, logging.INFO)
    raise typer.Exit(run_workers(settings, concurrency, burst))


def regrade(submission_id: str = typer.Argument(..., help="The submission to grade again.")) -> None:
    """Queue a new grading of a finished submission (its record and report are replaced when done)."""
    settings = load_settings()
    with infra_errors():
        connection = connect_redis(settings)
    store = open_store_or_fail(settings)
    try:
        queued = regrade_submission(store, redis_enqueue(settings, connection), submission_id)
    except SubmitError as exc:  # unknown (404) or not finished (409): nothing to do
        raise fail(exc.message, EXIT_FAILED) from None
    if not queued.enqueued:
        raise fail(f"{submission_id} recorded for regrading but not enqueued ({queued.enqueue_error})", EXIT_INFRA)
    typer.echo(submission_id)


def delete(
    submission_id: str = typer.Argument(..., help="The submission to delete."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask."),
) -> None:
    """Delete a finished submission everywhere: record, reports, kept code, and every comparison with it."""
    settings = load_settings()
    store = open_store_or_fail(settings)
    if not yes:
        typer.confirm(f"delete {submission_id}, its reports and its comparisons?", abort=True)
    try:
        delete_submission(settings, store, submission_id, open_storage(settings))
    except SubmitError as exc:  # unknown (404) or still being graded (409)
        raise fail(exc.message, EXIT_FAILED) from None
    typer.echo(f"deleted {submission_id}")
