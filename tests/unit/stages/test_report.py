"""Reports: the public JSON names, HTML that reads top-down and escapes what the sandbox produced, and the files."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from markupsafe import escape

from grader.assignments.model import Assignment, Category
from grader.models import (
    CategoryReport,
    GradeReport,
    SourceInfo,
    Status,
    SubmissionRequest,
    TestOutcome,
    TestReport,
    Timings,
)
from grader.stages.report import build_report, render_html, report_view, write_report
from tests.unit.stages import report_samples as samples

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


def _index(html: str, *marks: str) -> list[int]:
    return [html.index(mark) for mark in marks]


def test_report_reads_top_down_score_chart_verdict_why_then_details():
    """Score, chart, verdict, why this score (security first), caveats, review, questions, own tests, all tests, logs."""
    html = render_html(samples.flawed())
    order = _index(html, 'id="report-score"', '<svg class="chart"', 'id="verdict"', 'id="why"', 'id="security"', 'id="lost"',
                   'id="caveats"', 'id="review"', 'id="questions"', 'id="candidate-tests"', 'id="tests"', 'id="logs"',
                   'id="provenance"')
    assert order == sorted(order)
    assert "48 <small>/ 100</small>" in html
    assert html.count('<rect x="320"') == 8, "a track and a bar per category"


def test_security_is_called_out_with_lost_tests_and_review_findings():
    """The security box names the security tests lost and the security findings of the review, nothing else."""
    html = render_html(samples.flawed())
    box = html[html.index('id="security"'):html.index('id="lost"')]
    assert "Passwords are not stored in plain text" in box and "ruff:S608" in box
    assert "Concurrent likes" not in box and "ruff:B006" not in box


def test_every_part_of_the_flawed_report_is_shown():
    """Rubric lines, reproduce lines, caveats, findings and metrics, questions with strong answers, own tests."""
    html = render_html(samples.flawed())
    for text in ("Passwords are never stored in plain text, and hashes are salted.", "sqlite3 /tmp/notes.db",
                 "likely a race", "notes/api.py:88", "Python lines <strong>812</strong>",
                 "largest module <strong>notes/api.py (341 lines)</strong>",
                 "max complexity <strong>17 at notes/api.py:120 update_note</strong>", "migration files <strong>1</strong>",
                 "How does your app store passwords",
                 "a slow salted hash", 'class="tag tag-depth"', "63.4 %", "tests/test_notes.py::test_delete_note",
                 "passed on re-run", "Worker (pid:9) was sent SIGKILL!"):
        assert text in html, text


def test_candidate_output_is_escaped_everywhere():
    """A response body, evidence and a snippet with markup come out as text, in the page and its print variant."""
    for html in (render_html(samples.flawed()), render_html(samples.flawed(), printable=True)):
        assert '<script>alert("owned")</script>' not in html
        assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;" in html
    assert "<script" not in render_html(samples.flawed()), "the report runs no script of its own either"


def test_report_names_nothing_to_fetch():
    """No scripts, stylesheets, images or fonts from anywhere: the page is one file."""
    html = render_html(samples.flawed())
    for needle in ("<script", "<link", "<img", "src=", "url(", "@import", "@font-face"):
        assert needle not in html, needle


def test_print_variant_is_expanded_lists_only_failures_and_has_no_links():
    """The PDF's HTML: every <details> open, passed tests counted not listed, no download links."""
    html = render_html(samples.flawed(), printable=True)
    tags = re.findall(r"<details[^>]*>", html)
    assert tags and all(tag.endswith(" open>") for tag in tags), tags
    assert '<details class="category" id="category-auth" open>' in html
    assert "Register, then log in" not in html and "2 passed or skipped tests not listed" in html
    assert "report.pdf" not in html and 'class="downloads"' not in html
    assert "report.pdf" in render_html(samples.flawed())


@pytest.mark.parametrize("make", [samples.perfect, samples.build_failed, samples.infra_error])
def test_reports_without_the_new_parts_render(make):
    """Perfect, build_failed and infra_error reports render, saying what there is to say."""
    report = make()
    html = render_html(report)
    assert "Why this score" not in html
    if report.status is Status.graded:
        assert "every hidden test passed" in html and "the repository has no tests" in html
    else:
        assert 'id="reason"' in html and str(escape(report.reason)) in html and "<svg" not in html and "no score" in html


def test_a_report_of_before_issue_14_still_renders():
    """report.json without summary, review, follow-ups, candidate tests, points or re-runs."""
    report = GradeReport.model_validate(samples.legacy_json())
    assert report.summary is None and report.review is None
    html = render_html(report)
    assert "All hidden tests" in html and "Login refuses an off-site next" in html and 'id="why"' not in html


def test_write_report_writes_every_export_and_links_them(tmp_path):
    """report.json, report.html, junit.xml, ctrf.json and report.pdf, and the HTML links the four downloads."""
    folder = write_report(samples.flawed(), tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["ctrf.json", "junit.xml", "report.html", "report.json", "report.pdf"]
    assert (folder / "report.pdf").read_bytes().startswith(b"%PDF")
    assert json.loads((folder / "ctrf.json").read_text())["reportFormat"] == "CTRF"
    html = (folder / "report.html").read_text()
    for name in ("report.pdf", "junit.xml", "ctrf.json", "report.json"):
        assert f'href="{name}"' in html
    assert GradeReport.model_validate_json((folder / "report.json").read_text()) == samples.flawed()


def test_a_failing_pdf_loses_nothing_else(tmp_path, monkeypatch, caplog):
    """WeasyPrint raising: the other files are written, a stale PDF removed, the HTML no longer links it, it is logged."""
    folder = tmp_path / samples.REQUEST.id
    folder.mkdir()
    (folder / "report.pdf").write_bytes(b"%PDF stale")

    def broken(html: str) -> bytes:
        raise OSError("cannot load library 'libpango-1.0-0'")

    monkeypatch.setattr("grader.stages.report.render_pdf", broken)
    write_report(samples.flawed(), tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["ctrf.json", "junit.xml", "report.html", "report.json"]
    assert 'href="report.pdf"' not in (folder / "report.html").read_text()
    assert "report.pdf not written" in caplog.text and "libpango" in caplog.text


def test_build_report_carries_the_new_parts():
    """build_report hands the summary, review, follow-ups and candidate tests to the report unchanged."""
    report = samples.flawed()
    assert (report.summary, report.review, report.follow_ups, report.candidate_tests) == (
        samples.SUMMARY, samples.REVIEW, samples.FOLLOW_UPS, samples.CANDIDATE_TESTS)
    assert [b.color for b in report_view(report).bars] == ["#cf222e", "#d4a72c", "#d4a72c", "#cf222e"]


def test_text_no_encoding_can_carry_still_writes_every_file(tmp_path):
    """A lone surrogate from the sandbox (valid in JSON, not in UTF-8) costs no file."""
    folder = write_report(_graded(message="bad \ud800 bytes"), tmp_path)
    assert {p.name for p in folder.iterdir()} >= {"report.json", "report.html", "junit.xml", "ctrf.json"}
    assert "bad ? bytes" in (folder / "report.html").read_text()


def test_timings_of_lanes_services_and_workers_render_with_their_names():
    """Timings hold seconds, and seconds by lane or service, and one per worker start: each rendered as such."""
    report = GradeReport(
        id="s-t", assignment="a", source=SourceInfo(url="u"), status=Status.graded, grader_version="0",
        created_at=datetime.now(UTC),
        timings=Timings(total_s=3.5, lanes_s={"main": 12.3, "jobs": 99.1}, services_ready_s={"postgresql": 0.06},
                        worker_ready_s=[4.2, 3.9]),
    )
    html = render_html(report)
    assert "total_s 3.50" in html and "lanes_s (main 12.30, jobs 99.10)" in html
    assert "services_ready_s (postgresql 0.06)" in html and "worker_ready_s (4.20, 3.90)" in html
