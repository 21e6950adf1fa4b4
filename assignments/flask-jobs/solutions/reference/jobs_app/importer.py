"""Running one import: what the Celery task does, in the Flask app context.

Safe to run twice, even at the same time, and after a run that died half-way:
1. `running` is committed first (a `pending` or a `running` import is taken, so a new worker takes over
   the import of a dead one; `done` and `failed` are final and left alone);
2. the whole CSV is parsed before anything is written, so a malformed file never leaves records;
3. records are written in batches, each committed, with `ON CONFLICT DO NOTHING` on the key
   (import_id, row_no): a second run, or a run after a killed one, adds only what is missing;
4. the end is one transaction holding the import row `FOR UPDATE`: only a run that still finds it
   `running` marks it `done` (the count read from `records`) or `failed` (its records deleted).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

from flask import current_app
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from .csv_rules import MalformedCsv, ParsedCsv, Row, parse_csv
from .extensions import db
from .models import DONE, FAILED, MAX_ID, PENDING, RUNNING, Import, Record

log = logging.getLogger(__name__)


def run_import(import_id: int) -> str:
    """Process one import; return what happened (for the worker's log)."""
    if not isinstance(import_id, int) or not 1 <= import_id <= MAX_ID:
        return "ignored: not an import id"
    csv_text = _mark_running(import_id)
    if csv_text is None:
        return "skipped: missing, done or failed"
    try:
        parsed = parse_csv(csv_text, current_app.config["IMPORT_MAX_ERRORS"])
    except MalformedCsv as exc:
        return _finish_failed(import_id, str(exc))
    _write_records(import_id, parsed.rows, current_app.config["IMPORT_BATCH_SIZE"])
    return _finish_done(import_id, parsed)


def _mark_running(import_id: int) -> str | None:
    """Commit `running` (taking over a running import too); return the CSV, or None if there is nothing to do."""
    imports = Import.__table__
    csv_text = db.session.execute(
        update(imports)
        .where(imports.c.id == import_id, imports.c.status.in_((PENDING, RUNNING)))
        .values(status=RUNNING, started_at=func.now())
        .returning(imports.c.csv_text)
    ).scalar_one_or_none()
    db.session.commit()
    return csv_text


def _batches(rows: Sequence[Row], size: int) -> Iterator[Sequence[Row]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def _write_records(import_id: int, rows: Sequence[Row], batch_size: int) -> None:
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    for batch in _batches(rows, max(1, batch_size)):
        statement = dialect.insert(Record.__table__).on_conflict_do_nothing(index_elements=["import_id", "row_no"])
        db.session.execute(statement, [
            {"import_id": import_id, "row_no": row.row_no, "email": row.email, "name": row.name, "amount": row.amount}
            for row in batch
        ])
        db.session.commit()


def _locked_running(import_id: int) -> Import | None:
    """The import, its row locked until commit, if it is still running."""
    found = db.session.execute(
        select(Import).where(Import.id == import_id).with_for_update()
    ).scalar_one_or_none()
    if found is None or found.status != RUNNING:
        db.session.rollback()
        return None
    return found


def _finish_done(import_id: int, parsed: ParsedCsv) -> str:
    found = _locked_running(import_id)
    if found is None:
        return "skipped: finished by another run"
    stored = db.session.scalar(select(func.count()).select_from(Record).where(Record.import_id == import_id))
    found.status = DONE
    found.total_rows = parsed.total_rows
    found.invalid_rows = parsed.invalid_rows
    found.errors = parsed.errors
    found.record_count = stored or 0
    found.error = None
    found.finished_at = func.now()
    db.session.commit()
    log.info("import %s done: %s rows, %s records", import_id, parsed.total_rows, stored)
    return "done"


def _finish_failed(import_id: int, message: str) -> str:
    found = _locked_running(import_id)
    if found is None:
        return "skipped: finished by another run"
    db.session.execute(delete(Record).where(Record.import_id == import_id))
    found.status = FAILED
    found.error = message
    found.total_rows = found.invalid_rows = found.record_count = 0
    found.errors = []
    found.finished_at = func.now()
    db.session.commit()
    log.info("import %s failed: %s", import_id, message)
    return "failed"
