"""A regrade beside the grade it replaces: the report keeps the earlier score and says what differs between the two
gradings, so a hiring team can tell a changed grade of the same inputs (another host, a flaky run) from one of
changed inputs (a new base image, another version of the assignment).

Each host builds its own images, so image ids always differ across hosts; the base image is compared by its
content digest, which is equal wherever the same files were built.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from grader.models import EarlierGrade, GradeReport
from grader.storage import Storage

log = logging.getLogger(__name__)

_COMPARED = {
    "commit": lambda r: r.source.commit,
    "dependencies": lambda r: r.provenance.dependencies_sha256 or r.provenance.requirements_sha256,
    "base image": lambda r: r.provenance.base_image_digest,
    "assignment version": lambda r: r.provenance.assignment_version,
    "grader version": lambda r: r.grader_version,
    "host": lambda r: r.provenance.host,
}


def earlier_report(storage: Storage, folder: str) -> GradeReport | None:
    """The report now in `folder`, the one a regrade replaces; None when there is none or it cannot be read."""
    try:
        data = storage.get(f"{folder}/report.json")
    except Exception as exc:  # the comparison is lost, never the grade
        log.warning("%s: the earlier report could not be read: %s", folder, exc)
        return None
    if data is None:
        return None
    try:
        return GradeReport.model_validate_json(data)
    except ValidationError:
        log.warning("%s: the earlier report does not parse; the regrade is not compared", folder)
        return None


def compare_with_earlier(report: GradeReport, earlier: GradeReport | None) -> GradeReport:
    """The report with `earlier` set; a field unknown to either grading (reports of before it was recorded) is not
    called a difference."""
    if earlier is None or earlier.id != report.id:
        return report
    differences, unknown = {}, []
    for name, read in _COMPARED.items():
        before, now = read(earlier), read(report)
        if before is None or now is None:
            unknown.append(name)
        elif before != now:
            differences[name] = (before, now)
    return report.model_copy(update={"earlier": EarlierGrade(
        status=earlier.status, score=earlier.score, max_score=earlier.max_score, graded_at=earlier.created_at,
        host=earlier.provenance.host, differences=differences, unknown=unknown,
    )})
