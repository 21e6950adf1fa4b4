"""Celery tasks, and how the web app queues them."""

from __future__ import annotations

from celery import shared_task
from flask import current_app
from sqlalchemy.exc import OperationalError

from .importer import run_import

PROCESS_IMPORT = "jobs_app.process_import"


@shared_task(
    name=PROCESS_IMPORT,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    # A lost connection or a deadlock between two runs of one import: try again, the task is idempotent.
    autoretry_for=(OperationalError,),
    retry_backoff=2,
    retry_backoff_max=30,
    max_retries=8,
)
def process_import(self, import_id: int) -> str:
    """Parse an import's CSV and store its records (runs in the Flask app context)."""
    return run_import(import_id)


def enqueue_import(import_id: int) -> None:
    """Queue the import's task. Call it only after the import's transaction has committed."""
    current_app.extensions["celery"].send_task(PROCESS_IMPORT, args=[import_id])
