"""Stage 6: the graded report as JSON and HTML. Building is pure; writing is the only I/O."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from grader import __version__
from grader.assignments.model import Assignment
from grader.models import (
    CategoryReport,
    GradeReport,
    Provenance,
    SourceInfo,
    Status,
    SubmissionRequest,
    Timings,
)

_templates = Environment(
    loader=PackageLoader("grader", "templates"), autoescape=select_autoescape(default=True, default_for_string=True)
)


def build_report(
    request: SubmissionRequest,
    assignment: Assignment | None,
    *,
    status: Status,
    reason: str = "",
    source: SourceInfo | None = None,
    categories: list[CategoryReport] | None = None,
    timings: Timings | None = None,
    provenance: Provenance | None = None,
    logs: dict[str, str] | None = None,
    warnings: list[str] | None = None,
) -> GradeReport:
    categories = categories or []
    graded = status is Status.graded
    return GradeReport(
        id=request.id,
        assignment=request.assignment,
        source=source or SourceInfo(url=request.source, ref=request.ref),
        status=status,
        reason=reason,
        warnings=list(warnings or []),
        score=round(sum(c.score for c in categories), 2) if graded else 0.0,
        max_score=assignment.max_score if assignment else 0.0,
        categories=categories,
        timings=timings or Timings(),
        grader_version=__version__,
        provenance=provenance or Provenance(assignment_version=assignment.version if assignment else None),
        created_at=datetime.now(UTC),
        logs={k: v for k, v in (logs or {}).items() if v},
    )


def infra_report(
    request: SubmissionRequest,
    assignment: Assignment | None,
    reason: str,
    *,
    source: SourceInfo | None = None,
    provenance: dict[str, object] | None = None,
    logs: dict[str, str] | None = None,
) -> GradeReport:
    """The one report of every `infra_error` (a stage that failed on our side, a job that raised or timed out,
    the watchdog giving up): no score, and a reason that says it was the grader, not the candidate."""
    fields = {key: value for key, value in (provenance or {}).items() if key in Provenance.model_fields}
    if assignment is not None:
        fields.setdefault("assignment_version", assignment.version)
    return build_report(
        request, assignment, status=Status.infra_error, source=source,
        reason=f"{reason} (the grader's machinery failed, not the submission; no score is given)",
        provenance=Provenance(**fields),  # type: ignore[arg-type]
        logs=logs,
    )


def render_html(report: GradeReport) -> str:
    return _templates.get_template("report.html").render(report=report)


def write_report(report: GradeReport, reports_dir: Path) -> Path:
    """Write report.json and report.html into reports/<id>/; return the directory."""
    folder = reports_dir / report.id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(report.model_dump(mode="json"), indent=2) + "\n")
    (folder / "report.html").write_text(render_html(report))
    return folder
