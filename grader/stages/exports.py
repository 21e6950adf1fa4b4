"""The report for other tools: JUnit XML (CI dashboards), CTRF JSON (https://ctrf.io) and a PDF to file or print.

Each is built from the GradeReport alone; the text in them came from the sandbox, so XML gets only characters
XML 1.0 allows and the PDF renderer fetches nothing (no network, no file).
"""

from __future__ import annotations

import logging
import re
import uuid
import xml.etree.ElementTree as ET
from typing import Any

from grader import __version__
from grader.models import CategoryReport, Exchange, GradeReport, LostTest, Status, TestOutcome, TestReport

TOOL = "flask-grader"
CTRF_SPEC_VERSION = "0.0.0"
BODY_CHARS = 4000
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_CTRF_STATUS = {TestOutcome.passed: "passed", TestOutcome.failed: "failed", TestOutcome.error: "failed",
                TestOutcome.skipped: "skipped"}


def xml_safe(text: str) -> str:
    """`text` without the characters XML 1.0 cannot carry, escaped or not (NUL, most C0 controls, lone surrogates)."""
    return _NOT_XML.sub("\ufffd", text)


def _clip(text: str, limit: int = BODY_CHARS) -> str:
    return text if len(text) <= limit else f"{text[:limit]}\n... ({len(text) - limit} more characters)"


def exchange_text(exchange: Exchange) -> str:
    """One request and its response as plain text, the body capped."""
    lines = [f"{exchange.method} {exchange.url}"]
    if exchange.request_body:
        lines.append(_clip(exchange.request_body))
    lines.append(f"-> {exchange.status if exchange.status is not None else 'no response'}")
    lines += [f"{name}: {value}" for name, value in exchange.response_headers.items()]
    if exchange.response_body:
        lines += ["", _clip(exchange.response_body)]
    return "\n".join(lines)


def lost_by_test(report: GradeReport) -> dict[tuple[str, str], LostTest]:
    """The summary's rows keyed by (category, test id)."""
    return {(lost.category, lost.test): lost for lost in (report.summary.lost if report.summary else [])}


def evidence_text(test: TestReport, lost: LostTest | None) -> str:
    """Why a test failed, for a reader without the HTML report: message, rubric, reproduction, exchanges."""
    parts = [test.message] if test.message else []
    if lost is not None:
        parts.append(f"rubric: {lost.rubric}\nseverity: {lost.severity.value}, {lost.points:g} points lost")
        if lost.reproduce:
            parts.append(f"reproduce: {lost.reproduce}")
        if lost.evidence:
            parts.append("evidence:\n" + _clip(lost.evidence))
    if test.rerun is not None:
        parts.append(f"re-run for diagnosis: {test.rerun.value}" + (" (intermittent)" if test.intermittent else ""))
    parts += [exchange_text(exchange) for exchange in test.exchanges]
    return "\n\n".join(parts)


def junit_xml(report: GradeReport) -> bytes:
    """One <testsuite> per category, one <testcase> per hidden test; a report not graded is one errored case."""
    root = ET.Element("testsuites", name=xml_safe(f"{TOOL}: {report.assignment} {report.id}"))
    if report.status is Status.graded:
        lost = lost_by_test(report)
        for category in report.categories:
            root.append(_suite(report, category, lost))
    else:
        root.append(_ungraded_suite(report))
    for key in ("tests", "failures", "errors", "skipped"):
        root.set(key, str(sum(int(suite.get(key, "0")) for suite in root)))
    root.set("time", f"{sum(float(suite.get('time', '0')) for suite in root):.3f}")
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _properties(parent: ET.Element, values: dict[str, object]) -> None:
    properties = ET.SubElement(parent, "properties")
    for name, value in values.items():
        if value is not None:
            ET.SubElement(properties, "property", name=name, value=xml_safe(str(value)))


def _common(report: GradeReport) -> dict[str, object]:
    return {"submission": report.id, "assignment": report.assignment, "status": report.status.value,
            "report_score": report.score, "report_max_score": report.max_score, "commit": report.source.commit,
            "grader_version": report.grader_version}


def _suite(report: GradeReport, category: CategoryReport, lost: dict[tuple[str, str], LostTest]) -> ET.Element:
    tests = category.tests
    suite = ET.Element("testsuite", name=xml_safe(category.id), tests=str(len(tests)),
                       failures=str(sum(t.outcome is TestOutcome.failed for t in tests)),
                       errors=str(sum(t.outcome is TestOutcome.error for t in tests)),
                       skipped=str(sum(t.outcome is TestOutcome.skipped for t in tests)),
                       time=f"{sum(t.duration_s for t in tests):.3f}",
                       timestamp=report.created_at.strftime("%Y-%m-%dT%H:%M:%S"))
    _properties(suite, {"title": category.title, "score": category.score, "max_score": category.max_score, **_common(report)})
    for test in tests:
        case = ET.SubElement(suite, "testcase", classname=xml_safe(category.id), name=xml_safe(test.id),
                             time=f"{test.duration_s:.3f}")
        message = xml_safe(_clip(test.message.splitlines()[0] if test.message else test.outcome.value, 500))
        if test.outcome is TestOutcome.skipped:
            ET.SubElement(case, "skipped", message=message)
        elif test.outcome.lost:
            tag = "failure" if test.outcome is TestOutcome.failed else "error"
            detail = ET.SubElement(case, tag, message=message, type=tag)
            detail.text = xml_safe(evidence_text(test, lost.get((category.id, test.id))))
    return suite


def _ungraded_suite(report: GradeReport) -> ET.Element:
    suite = ET.Element("testsuite", name=report.status.value, tests="1", failures="0", errors="1", skipped="0",
                       time=f"{report.timings.total_s:.3f}", timestamp=report.created_at.strftime("%Y-%m-%dT%H:%M:%S"))
    _properties(suite, _common(report))
    case = ET.SubElement(suite, "testcase", classname="submission", name=report.status.value,
                         time=f"{report.timings.total_s:.3f}")
    reason = report.reason or f"the submission was not graded ({report.status.value})"
    error = ET.SubElement(case, "error", message=xml_safe(_clip(reason, 500)), type=report.status.value)
    logs = [f"{name}:\n{_clip(text)}" for name, text in report.logs.items()]
    error.text = xml_safe("\n\n".join([reason, *logs]))
    return suite


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def _ctrf_test(category: CategoryReport, test: TestReport, lost: LostTest | None) -> dict[str, Any]:
    extra: dict[str, Any] = {"category": category.id, "category_title": category.title, "test_id": test.id,
                             "points": test.points, "rerun": test.rerun.value if test.rerun else None,
                             "intermittent": test.intermittent}
    if lost is not None:
        extra.update(points_lost=lost.points, severity=lost.severity.value, rubric=lost.rubric, reproduce=lost.reproduce)
    item: dict[str, Any] = {"name": test.title or test.id, "status": _CTRF_STATUS[test.outcome], "duration": _ms(test.duration_s),
                            "rawStatus": test.outcome.value, "suite": [category.id], "filePath": test.id.split("::", 1)[0],
                            "extra": extra}
    if test.message:
        item["message"] = test.message
    if test.outcome.lost:
        item["trace"] = evidence_text(test, lost)
    if test.rerun is not None:
        item.update(retries=1, flaky=test.intermittent)
    return item


def _ungraded_test(report: GradeReport) -> dict[str, Any]:
    """The one test a report that was not graded has: failed when it was the candidate's fault, other when ours."""
    return {"name": f"submission {report.status.value}", "duration": _ms(report.timings.total_s),
            "status": "other" if report.status is Status.infra_error else "failed", "rawStatus": report.status.value,
            "message": report.reason or report.status.value, "suite": ["submission"],
            "trace": "\n\n".join(f"{name}:\n{_clip(text)}" for name, text in report.logs.items()),
            "extra": {"status": report.status.value}}


def _findings(report: GradeReport) -> dict[str, Any] | None:
    if report.review is None:
        return None
    by_severity: dict[str, int] = {}
    for finding in report.review.findings:
        by_severity[finding.severity.value] = by_severity.get(finding.severity.value, 0) + 1
    return {"findings": len(report.review.findings), "by_severity": by_severity, "error": report.review.error}


def ctrf_document(report: GradeReport) -> dict[str, Any]:
    """The report as a CTRF document: one test per hidden test, our score and summary in `results.extra`."""
    if report.status is Status.graded:
        lost = lost_by_test(report)
        tests = [_ctrf_test(c, t, lost.get((c.id, t.id))) for c in report.categories for t in c.tests]
    else:
        tests = [_ungraded_test(report)]
    stop = int(report.created_at.timestamp() * 1000)
    summary: dict[str, Any] = {status: sum(t["status"] == status for t in tests)
                               for status in ("passed", "failed", "skipped", "pending", "other")}
    summary.update(tests=len(tests), flaky=sum(bool(t.get("flaky")) for t in tests), suites=len(report.categories) or 1,
                   start=stop - _ms(report.timings.total_s), stop=stop, duration=_ms(report.timings.total_s))
    environment = {"reportName": f"{report.assignment} {report.id}", "appName": report.assignment,
                   "appVersion": report.provenance.assignment_version, "buildId": report.id,
                   "repositoryUrl": report.source.url, "commit": report.source.commit, "branchName": report.source.ref}
    extra = {
        "submission_id": report.id, "assignment": report.assignment, "status": report.status.value, "reason": report.reason,
        "score": report.score, "max_score": report.max_score, "commit": report.source.commit,
        "categories": [{"id": c.id, "title": c.title, "score": c.score, "max_score": c.max_score} for c in report.categories],
        "summary": None if report.summary is None else {
            "verdict": report.summary.verdict, "lost": len(report.summary.lost),
            "points_lost": round(sum(lost.points for lost in report.summary.lost), 2), "caveats": report.summary.caveats},
        "review": _findings(report), "follow_ups": len(report.follow_ups),
        "candidate_tests": None if report.candidate_tests is None
        else report.candidate_tests.model_dump(mode="json", exclude={"output_tail"}),
        "warnings": report.warnings, "limits_hit": report.limits_hit,
    }
    return {
        "reportFormat": "CTRF", "specVersion": CTRF_SPEC_VERSION,
        "reportId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{TOOL}:{report.id}:{report.created_at.isoformat()}")),
        "timestamp": report.created_at.isoformat(), "generatedBy": f"{TOOL} {__version__}",
        "results": {"tool": {"name": TOOL, "version": report.grader_version}, "summary": summary, "tests": tests,
                    "environment": {k: v for k, v in environment.items() if v is not None}, "extra": extra},
    }


def render_pdf(html: str) -> bytes:
    """The print variant of the HTML report as PDF; WeasyPrint is imported here, so its system libraries
    (Pango) are needed only when a PDF is made, and every URL the document names is refused. Its warnings are
    about the candidate's text (a glyph no font has), nothing to act on, so only its errors are logged."""
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    class _NoFetch(URLFetcher):
        def fetch(self, url: str, headers: Any = None) -> Any:
            raise ValueError(f"the report fetches nothing: {url[:80]}")

    return bytes(HTML(string=html, base_url=None, url_fetcher=_NoFetch()).write_pdf())
