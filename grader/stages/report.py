"""Stage 6: the graded report as JSON, HTML, JUnit XML, CTRF JSON and PDF. Building is pure; writing (through
the storage seam) is the only I/O.

`report_view` derives what the HTML shows beside the report itself (the chart's bars, security first); the
standalone report.html and the reviewer's page both render `_report_body.html` with it.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from grader import __version__
from grader.assignments.model import Assignment
from grader.models import (
    SIMILAR_FLOOR,
    CandidateTests,
    CategoryReport,
    CodeReview,
    Finding,
    FollowUp,
    GradeReport,
    LostTest,
    Provenance,
    Severity,
    SourceInfo,
    Status,
    SubmissionRequest,
    Summary,
    TestReport,
    Timings,
)
from grader.stages.exports import ctrf_document, junit_xml, render_pdf
from grader.storage import Storage
from grader.storage.local import LocalStorage

log = logging.getLogger(__name__)

_templates = Environment(
    loader=PackageLoader("grader", "templates"), autoescape=select_autoescape(default=True, default_for_string=True)
)

EXPORTS = {"report.json": "application/json", "report.html": "text/html", "junit.xml": "application/xml",
           "ctrf.json": "application/json", "report.pdf": "application/pdf"}
"""The files of a report's folder and their media types; the web app serves exactly these."""

SIBLINGS = {"PDF": "report.pdf", "JUnit XML": "junit.xml", "CTRF JSON": "ctrf.json", "JSON": "report.json"}
"""The downloads the standalone report links to, beside it in its folder."""

KEY_METRICS = {"python_lines": "Python lines", "python_files": "Python files", "largest_module": "largest module",
               "max_complexity": "max complexity", "maintainability_index": "maintainability index", "test_files": "test files"}
"""The review's figures the report shows in its one line; the others are a click away."""
_METRIC_DETAIL = {"largest_module": ("largest_module_lines", "{} ({} lines)"), "max_complexity": ("max_complexity_at", "{} at {}")}
_SEVERITY_ORDER = {severity: rank for rank, severity in enumerate(Severity)}
_CHART_ROW = 26


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
    summary: Summary | None = None,
    review: CodeReview | None = None,
    follow_ups: list[FollowUp] | None = None,
    candidate_tests: CandidateTests | None = None,
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
        summary=summary,
        review=review,
        follow_ups=list(follow_ups or []),
        candidate_tests=candidate_tests,
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


@dataclass(frozen=True)
class Bar:
    """One category in the score chart."""

    id: str
    title: str
    score: float
    max_score: float
    y: int
    width: float
    color: str


@dataclass(frozen=True)
class ReportView:
    """What the template shows beside the report's own fields, computed once in Python rather than in Jinja."""

    graded: bool
    bars: list[Bar]
    chart_height: int
    category_titles: dict[str, str]
    security_lost: list[LostTest]
    security_findings: list[Finding]
    findings: list[Finding]
    caveats: list[str]
    failed: dict[str, int]
    key_metrics: list[tuple[str, str]]


def _color(score: float, max_score: float) -> str:
    """Green from 80 %, amber from 50 %, red below; an attribute, since WeasyPrint's SVG ignores the page's CSS."""
    ratio = score / max_score if max_score else 0.0
    return "#2da44e" if ratio >= 0.8 else "#d4a72c" if ratio >= 0.5 else "#cf222e"


def _caveats(report: GradeReport) -> list[str]:
    """The summary's caveats or, for a report without one, the tests that passed when re-run."""
    if report.summary is not None:
        return list(report.summary.caveats)
    return [f"{t.title} ({c.title}) failed, then passed when re-run for diagnosis; the score keeps the failure."
            for c in report.categories for t in c.tests if t.intermittent]


def _key_metrics(review: CodeReview | None) -> list[tuple[str, str]]:
    metrics = review.metrics if review else {}
    shown = []
    for name, label in KEY_METRICS.items():
        if name in metrics:
            detail, form = _METRIC_DETAIL.get(name, ("", "{}"))
            shown.append((label, form.format(metrics[name], metrics[detail]) if detail in metrics else str(metrics[name])))
    return shown


def report_view(report: GradeReport, bar_width: float = 200.0) -> ReportView:
    """The chart's bars (`bar_width` pixels for a full category), the security rows and findings, findings by severity."""
    findings = sorted(report.review.findings if report.review else [], key=lambda f: _SEVERITY_ORDER[f.severity])
    lost = report.summary.lost if report.summary else []
    bars = [
        Bar(id=c.id, title=c.title, score=c.score, max_score=c.max_score, y=i * _CHART_ROW,
            width=round(bar_width * min(c.score / c.max_score, 1.0), 1) if c.max_score else 0.0, color=_color(c.score, c.max_score))
        for i, c in enumerate(report.categories)
    ]
    failed = {c.id: sum(t.outcome.lost for t in c.tests) for c in report.categories}
    return ReportView(
        graded=report.status is Status.graded, bars=bars, chart_height=len(bars) * _CHART_ROW,
        category_titles={c.id: c.title for c in report.categories},
        security_lost=[item for item in lost if item.severity is Severity.security],
        security_findings=[f for f in findings if f.severity is Severity.security],
        findings=findings, caveats=_caveats(report), failed=failed, key_metrics=_key_metrics(report.review),
    )


def shown_tests(category: CategoryReport, printable: bool) -> list[TestReport]:
    """The tests the full list shows: all of them on screen, the ones that did not pass on paper."""
    if not printable:
        return list(category.tests)
    return [t for t in category.tests if t.outcome.lost]


def report_context(
    report: GradeReport, *, printable: bool = False, downloads: dict[str, str] | None = None,
) -> dict[str, object]:
    """What `_report_body.html` needs, for the standalone report and the reviewer's page alike."""
    return {"report": report, "view": report_view(report), "printable": printable, "shown_tests": shown_tests,
            "similar_floor": SIMILAR_FLOOR,
            "downloads": {} if printable else dict(SIBLINGS if downloads is None else downloads)}


def render_html(report: GradeReport, *, printable: bool = False, downloads: dict[str, str] | None = None) -> str:
    """The standalone report; `printable` is the variant the PDF is made from (everything expanded, passed tests
    counted rather than listed, no links)."""
    context = report_context(report, printable=printable, downloads=downloads)
    return _templates.get_template("report.html").render(**context)


def report_files(report: GradeReport, *, pdf: bool = True) -> dict[str, bytes]:
    """The files of a report's folder, in the order they are written: report.json, then junit.xml, ctrf.json and
    report.pdf, then report.html linking to those made. An export that fails is logged and left out: the report
    is never lost for one."""
    files = {"report.json": (json.dumps(report.model_dump(mode="json"), indent=2) + "\n").encode()}
    exports = {
        "junit.xml": lambda: junit_xml(report),
        "ctrf.json": lambda: (json.dumps(ctrf_document(report), indent=2) + "\n").encode(),
        **({"report.pdf": lambda: render_pdf(render_html(report, printable=True))} if pdf else {}),
    }
    for name, make in exports.items():
        started = time.monotonic()
        try:
            files[name] = make()
        except Exception:  # an export is a convenience; report.json is the contract
            log.exception("report %s: %s not written", report.id, name)
        else:
            log.debug("report %s: %s in %.2f s", report.id, name, time.monotonic() - started)
    written = {label: name for label, name in SIBLINGS.items() if name in files}
    files["report.html"] = render_html(report, downloads=written).encode("utf-8", errors="replace")
    return files


def store_report(report: GradeReport, storage: Storage, folder: str, *, pdf: bool = True) -> str:
    """Write the report's files under the key prefix `folder` (`reports/<id>`, or a staging prefix); returns the
    key of report.json."""
    return put_report_files(report_files(report, pdf=pdf), storage, folder)


def put_report_files(files: dict[str, bytes], storage: Storage, folder: str) -> str:
    """Write `report_files` under `folder`, removing an export they lack (a stale copy would be another
    grading's); returns the key of report.json."""
    for name, data in files.items():
        storage.put(f"{folder}/{name}", data)
    for name in set(SIBLINGS.values()) - set(files):
        storage.delete(f"{folder}/{name}")
    return f"{folder}/report.json"


def write_report(report: GradeReport, reports_dir: Path, *, pdf: bool = True) -> Path:
    """Write reports_dir/<id>/ on this disk (`grader grade`'s folder for its user, the tests); returns the folder."""
    store_report(report, LocalStorage(reports_dir), report.id, pdf=pdf)
    return reports_dir / report.id
