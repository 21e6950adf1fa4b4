"""The files of a report's folder (report.pdf, junit.xml, ctrf.json, report.json) for staff pages and the API.

Only these names are served, from the folder of the record's own report.json, never a path from the request.
What they hold came from the sandbox, so the XML and JSON answer with a CSP that lets nothing run.
"""

from __future__ import annotations

from pathlib import Path

from flask import send_file
from werkzeug.wrappers import Response

from grader.db.store import SubmissionRecord
from grader.stages.report import EXPORTS, SIBLINGS

DOWNLOADS = tuple(SIBLINGS.values())
"""What may be downloaded: report.html is rendered again from report.json rather than served."""


def export_path(record: SubmissionRecord, name: str) -> Path | None:
    """The export `name` of a finished record's report, or None when it is not there (an older report, a failed PDF)."""
    if name not in DOWNLOADS or not record.final or not record.report_path:
        return None
    path = Path(record.report_path).parent / name
    return path if path.is_file() else None


def available(record: SubmissionRecord) -> dict[str, str]:
    """The label and file name of each export the record's report folder has."""
    return {label: name for label, name in SIBLINGS.items() if export_path(record, name)}


def send_export(record: SubmissionRecord, name: str) -> Response | None:
    """The file as a response (the PDF inline, the rest as downloads), or None when it is not there."""
    path = export_path(record, name)
    if path is None:
        return None
    pdf = name == "report.pdf"
    response = send_file(path, mimetype=EXPORTS[name], as_attachment=not pdf, download_name=f"{record.id}-{name}", max_age=0)
    if not pdf:
        response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
