"""Reports: the public JSON names, and HTML that escapes what the sandbox produced."""

from __future__ import annotations

import json

from grader.assignments.model import Assignment, Category
from grader.models import CategoryReport, Status, SubmissionRequest, TestOutcome, TestReport
from grader.stages.report import build_report, render_html, write_report

ASSIGNMENT = Assignment(id="demo", title="Demo", version="7", categories=[Category(id="auth", title="A", weight=25)])
REQUEST = SubmissionRequest(id="s-1", source="https://example.com/r.git", assignment="demo")


def _graded(message: str = "expected 401") -> object:
    test = TestReport(id="test_auth.py::t", title="t", outcome=TestOutcome.failed, message=message)
    category = CategoryReport(id="auth", title="A", score=12.5, max_score=25, tests=[test])
    return build_report(REQUEST, ASSIGNMENT, status=Status.graded, categories=[category])


def test_json_has_the_contract_names(tmp_path):
    """report.json carries every field other tools read."""
    folder = write_report(_graded(), tmp_path)
    data = json.loads((folder / "report.json").read_text())
    for key in ("id", "assignment", "source", "status", "reason", "score", "max_score", "categories",
                "timings", "grader_version", "provenance"):
        assert key in data, key
    assert set(data["source"]) >= {"url", "ref", "commit"}
    assert set(data["timings"]) >= {"intake_s", "build_s", "boot_s", "tests_s", "report_s", "total_s"}
    assert set(data["provenance"]) >= {"commit", "requirements_sha256", "image_id", "assignment_version"}
    assert data["provenance"]["assignment_version"] == "7"
    assert (data["score"], data["max_score"]) == (12.5, 25)
    assert set(data["categories"][0]["tests"][0]) >= {"id", "title", "outcome", "message", "duration_s"}


def test_failed_statuses_score_zero():
    """A build failure has no score, whatever categories say."""
    report = build_report(REQUEST, ASSIGNMENT, status=Status.build_failed, reason="no requirements.txt")
    assert (report.score, report.max_score, report.categories) == (0.0, 25, [])


def test_html_escapes_hostile_text():
    """A message from the sandbox cannot inject markup into the report page."""
    html = render_html(_graded(message="<script>alert(1)</script>"))
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html
