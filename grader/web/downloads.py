"""The files of a report's folder (report.pdf, junit.xml, ctrf.json, report.json) for staff pages and the API.

Only these names are served, read from storage beside the record's own report.json (a legacy absolute path of
before the storage seam is read as a local file), never a path from the request. What they hold came from the
sandbox, so the XML and JSON answer with a CSP that lets nothing run.
"""

from __future__ import annotations

import io

from flask import send_file
from werkzeug.wrappers import Response

from grader.db.store import SubmissionRecord
from grader.stages.report import EXPORTS, SIBLINGS
from grader.storage import Storage, read_stored, stored_names

DOWNLOADS = tuple(SIBLINGS.values())
"""What may be downloaded: report.html is rendered again from report.json rather than served."""


def _sibling(record: SubmissionRecord, name: str) -> str | None:
    """The reference of export `name` beside a finished record's report.json, or None for another name."""
    if name not in DOWNLOADS or not record.final or not record.report_path:
        return None
    return f"{record.report_path.rpartition('/')[0]}/{name}"


def available(record: SubmissionRecord, storage: Storage) -> dict[str, str]:
    """The label and file name of each export the record's report folder has (one listing of the folder)."""
    if not record.final or not record.report_path:
        return {}
    present = set(stored_names(storage, record.report_path))
    return {label: name for label, name in SIBLINGS.items() if name in present}


def send_export(record: SubmissionRecord, name: str, storage: Storage) -> Response | None:
    """The file as a response (the PDF inline, the rest as downloads), or None when it is not there (an older
    report, a failed PDF)."""
    stored = _sibling(record, name)
    data = read_stored(storage, stored) if stored else None
    if data is None:
        return None
    pdf = name == "report.pdf"
    response = send_file(io.BytesIO(data), mimetype=EXPORTS[name], as_attachment=not pdf,
                         download_name=f"{record.id}-{name}", max_age=0)
    if not pdf:
        response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
