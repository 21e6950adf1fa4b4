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
) -> GradeReport:
    categories = categories or []
    graded = status is Status.graded
    return GradeReport(
        id=request.id,
        assignment=request.assignment,
        source=source or SourceInfo(url=request.source, ref=request.ref),
        status=status,
        reason=reason,
        score=round(sum(c.score for c in categories), 2) if graded else 0.0,
        max_score=assignment.max_score if assignment else 0.0,
        categories=categories,
        timings=timings or Timings(),
        grader_version=__version__,
        provenance=provenance or Provenance(assignment_version=assignment.version if assignment else None),
        created_at=datetime.now(UTC),
        logs={k: v for k, v in (logs or {}).items() if v},
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
