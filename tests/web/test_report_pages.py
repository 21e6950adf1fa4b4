"""The report on the web: the reviewer's page shows it inline with its downloads, staff and the API get the files,
and the candidate's status shows where they fell short without one hidden test, piece of evidence or question."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from defusedxml import ElementTree as SafeET

from grader.assignments.model import Assignment, Category
from grader.db.store import Store
from grader.models import GradeReport, Status
from grader.stages.report import write_report
from grader.storage import open_storage
from grader.submissions import candidate_view
from grader.web.users import Role
from tests.unit.stages import report_samples as samples
from tests.web.test_candidate import _invite, _submit

FILES = {"report.pdf": "application/pdf", "junit.xml": "application/xml", "ctrf.json": "application/json",
         "report.json": "application/json"}


def publish(store: Store, sid: str, reports_dir: Path, report: GradeReport) -> GradeReport:
    """Write a report and all its files for a queued record and finish it, as a worker would."""
    report = report.model_copy(update={"id": sid})
    folder = write_report(report, reports_dir)
    token = "t-" + sid
    record = store.get(sid)
    assert record and store.acquire(sid, record.job_id, "test", token)
    assert store.finish(sid, token, status=report.status, score=report.score, max_score=report.max_score,
                        report_path=str(folder / "report.json"), error=None)
    return report


@pytest.fixture
def graded(client, invitations, git_repo, store, enqueued, web_settings):
    """Submit through an invitation, then publish a report; returns (submission id, status page path)."""

    def run(report: GradeReport) -> tuple[str, str]:
        location = _submit(client, _invite(invitations), str(git_repo(files={"wsgi.py": "app = None\n"}))).headers["Location"]
        sid = enqueued[-1][0]
        publish(store, sid, web_settings.paths.reports_dir, report)
        return sid, location

    return run


def test_reviewer_page_shows_the_report_inline_with_its_downloads(client, login, graded):
    """The report's own partial, not an iframe: why this score, security first, escaped output, working links."""
    sid, _ = graded(samples.flawed())
    login(Role.reviewer)
    response = client.get(f"/submissions/{sid}")
    html = response.get_data(as_text=True)
    assert response.mimetype == "text/html"
    assert "<iframe" not in html and 'id="why"' in html and 'id="security"' in html and 'id="questions"' in html
    assert html.index('id="security"') < html.index('id="lost"') < html.index('id="tests"')
    assert '<script>alert("owned")</script>' not in html and "&lt;script&gt;alert(" in html
    assert "script-src" not in response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    for name in FILES:
        assert f'href="/submissions/{sid}/{name}"' in html
        assert client.get(f"/submissions/{sid}/{name}").status_code == 200
    assert f'href="/submissions/{sid}/report.html"' in html


def test_staff_get_each_file_with_its_media_type(client, login, graded):
    """PDF inline, XML and JSON as downloads that nothing can run in; junit.xml parses."""
    sid, _ = graded(samples.flawed())
    login(Role.reviewer)
    for name, mimetype in FILES.items():
        response = client.get(f"/submissions/{sid}/{name}")
        assert response.status_code == 200 and response.mimetype == mimetype, name
        disposition = response.headers["Content-Disposition"]
        assert disposition.startswith("inline" if name == "report.pdf" else "attachment") and f"{sid}-{name}" in disposition
    assert client.get(f"/submissions/{sid}/report.pdf").data.startswith(b"%PDF")
    assert "sandbox" in client.get(f"/submissions/{sid}/junit.xml").headers["Content-Security-Policy"]
    SafeET.fromstring(client.get(f"/submissions/{sid}/junit.xml").data)
    standalone = client.get(f"/submissions/{sid}/report.html").get_data(as_text=True)
    assert 'href="report.pdf"' in standalone, "relative: it resolves to the route beside it"


def test_a_missing_file_is_404_and_no_longer_linked(client, login, graded, store):
    """A report without a PDF (an older one, or WeasyPrint failed): 404, and the page does not offer it."""
    sid, _ = graded(samples.flawed())
    Path(store.get(sid).report_path).with_name("report.pdf").unlink()
    login(Role.reviewer)
    assert client.get(f"/submissions/{sid}/report.pdf").status_code == 404
    assert f"/submissions/{sid}/report.pdf" not in client.get(f"/submissions/{sid}").get_data(as_text=True)
    assert 'href="report.pdf"' not in client.get(f"/submissions/{sid}/report.html").get_data(as_text=True)
    assert client.get("/submissions/s-000000000000/junit.xml").status_code == 404


def test_reviewer_page_of_an_unfinished_or_failed_build(client, login, graded, invitations, git_repo, enqueued):
    """Queued: no report yet. Build failed: the reason, and no chart or lost table."""
    sid, _ = graded(samples.build_failed())
    login(Role.reviewer)
    html = client.get(f"/submissions/{sid}").get_data(as_text=True)
    assert "psycopg2==2.8.6 has no wheel" in html and "<svg" not in html and 'id="lost"' not in html
    _submit(client, _invite(invitations), str(git_repo(files={"wsgi.py": "app = None\n"})))
    queued = enqueued[-1][0]
    assert "Not graded yet" in client.get(f"/submissions/{queued}").get_data(as_text=True)
    assert client.get(f"/submissions/{queued}/ctrf.json").status_code == 404


def test_api_serves_the_files_with_a_token(client, users, tokens, graded):
    """GET /api/submissions/<id>/report.pdf|junit.xml|ctrf.json with a bearer token; 404 JSON when missing."""
    sid, _ = graded(samples.flawed())
    user = users.create_user("bot@example.com", "password123", Role.reviewer)
    auth = {"Authorization": f"Bearer {tokens.create_token(user.id, 'ci')}"}
    assert client.get(f"/api/submissions/{sid}/report.pdf", headers=auth).data.startswith(b"%PDF")
    ctrf = json.loads(client.get(f"/api/submissions/{sid}/ctrf.json", headers=auth).data)
    assert ctrf["results"]["extra"]["submission_id"] == sid
    junit = client.get(f"/api/submissions/{sid}/junit.xml", headers=auth)
    assert junit.mimetype == "application/xml" and SafeET.fromstring(junit.data).get("failures") == "7"
    missing = client.get("/api/submissions/s-000000000000/ctrf.json", headers=auth)
    assert missing.status_code == 404 and missing.is_json
    assert client.get(f"/api/submissions/{sid}/junit.xml").status_code == 401


SECRETS = [
    *(t.id for c in samples.FLAWED_CATEGORIES for t in c.tests),
    *(t.id.split("::")[1] for c in samples.FLAWED_CATEGORIES for t in c.tests),
    *(t.title for c in samples.FLAWED_CATEGORIES for t in c.tests),
    *(t.message for c in samples.FLAWED_CATEGORIES for t in c.tests if t.message),
    *(lost.evidence for lost in samples.LOST), *(lost.reproduce for lost in samples.LOST),
    *(f.rule for f in samples.REVIEW.findings), *(f.message for f in samples.REVIEW.findings),
    *(f.file for f in samples.REVIEW.findings), *(q.question for q in samples.FOLLOW_UPS),
    *(a for q in samples.FOLLOW_UPS for a in q.strong_answer), "alert(", "evil.example", "tests/test_notes.py",
    *samples.CANDIDATE_TESTS.output_tail.splitlines(), "SIGKILL", "likely a race",
]


def test_candidate_sees_where_they_fell_short_and_nothing_hidden(client, graded, web_settings):
    """Scores and the brief's rubric lines per category, their own tests' counts; no test, evidence, review or question."""
    _, location = graded(samples.flawed())
    body = client.get(location + "/status.json").get_data(as_text=True)
    result = json.loads(body)["result"]
    assert [(c["id"], c["score"]) for c in result["categories"]] == [("auth", 10), ("access_split", 15), ("migrations", 15),
                                                                    ("concurrency", 8)]
    auth = result["categories"][0]["fell_short"]
    assert auth == ["Passwords are never stored in plain text, and hashes are salted.",
                    "Notes are private. A note that belongs to someone else must look exactly like a missing one.",
                    "The session cookie is `HttpOnly` and has a `SameSite` attribute."]
    assert result["own_tests"] == {"ran": True, "passed": 11, "failed": 2, "errors": 0, "skipped": 1,
                                   "coverage_percent": 63.4, "note": ""}
    assert result["verdict"] == samples.SUMMARY.verdict
    page = client.get(location).get_data(as_text=True)
    for secret in SECRETS:
        assert secret not in body and secret not in page, secret
    assert "tests" not in result["categories"][0]


def test_a_verdict_that_names_a_hidden_test_is_not_shown(client, graded):
    """The verdict is dropped when it names a hidden test (its function name here) or a review finding's rule."""
    for verdict in ("Lost points on test_login_refuses_open_redirect.", "See ruff:S105 in the review."):
        summary = samples.SUMMARY.model_copy(update={"verdict": verdict})
        _, location = graded(samples.flawed().model_copy(update={"summary": summary}))
        body = client.get(location + "/status.json").get_data(as_text=True)
        assert json.loads(body)["result"]["verdict"] == "" and verdict not in body


def test_candidate_sees_test_titles_only_when_the_assignment_allows(store, graded, web_settings):
    """candidate_sees_tests shows titles and outcomes, still no evidence; reports of before #14 have no extras."""
    sid, _ = graded(samples.flawed())
    record = store.get(sid)
    allowed = Assignment(id="tiny", title="T", version="1", candidate_sees_tests=True,
                         categories=[Category(id="auth", title="A", weight=25)])
    storage = open_storage(web_settings)
    view = candidate_view(record, allowed, storage)
    assert {"title": "Passwords are not stored in plain text", "outcome": "failed"} in view["categories"][0]["tests"]
    assert "alice|password123" not in json.dumps(view)
    Path(record.report_path).write_text(json.dumps(samples.legacy_json()))
    old = candidate_view(record, None, storage)
    assert (old["verdict"], old["own_tests"], old["categories"][0]["fell_short"]) == ("", None, [])
    assert record.status is Status.graded
