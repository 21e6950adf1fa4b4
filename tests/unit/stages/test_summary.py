"""Why this score: the verdict, the lost rows (security first), evidence, reproduction and caveats."""

from __future__ import annotations

import shlex

import pytest

from grader.assignments.model import load_assignment
from grader.models import CodeReview, Exchange, Finding, Severity, SuiteOutcomes, TestOutcome, TestResult
from grader.settings import PROJECT_ROOT
from grader.stages.score import score_outcomes
from grader.stages.summary import reproduce, summarize

F, P = TestOutcome.failed, TestOutcome.passed


@pytest.fixture(scope="module")
def notes():
    return load_assignment(PROJECT_ROOT / "assignments", "flask-notes")


def _categories(notes, outcomes: dict[str, TestOutcome], **extra):
    results = [
        TestResult(
            id=test, title=test.split("::")[1].replace("_", " "), category=test.split("::")[0][5:-3], outcome=o,
            **extra.get(test, {}),
        )
        for test, o in outcomes.items()
    ]
    return score_outcomes(SuiteOutcomes(results=results), notes)


def test_security_rows_come_first_whatever_their_points_with_the_brief_s_rubric(notes):
    categories = _categories(notes, {
        "test_auth.py::test_register_rejects_short_password": F,
        "test_auth.py::test_session_cookie_is_httponly_and_samesite": F,
        "test_auth.py::test_me_returns_the_logged_in_user": P,
        "test_access_split.py::test_login_refuses_open_redirect[backslash]": F,
        "test_access_split.py::test_login_page_is_a_form_with_username_and_password": P,
    })
    summary = summarize(categories, notes, limits_hit=[])
    assert [row.severity for row in summary.lost] == [Severity.security, Severity.security, Severity.correctness]
    assert summary.lost[0].test.endswith("open_redirect[backslash]") and summary.lost[0].points == 10
    assert summary.lost[0].rubric == "`POST /login` never sends the browser to an off-site `next`."
    assert summary.lost[1].rubric == "The session cookie is `HttpOnly` and has a `SameSite` attribute."
    assert summary.lost[2].rubric == notes.categories[0].rubric  # the category's line when the test has none of its own
    assert "Security: open redirect and session cookie flags failed" in summary.verdict
    assert summary.verdict.startswith(f"Scored {sum(c.score for c in categories):g} of 100.")


def test_evidence_is_the_message_and_the_last_exchange_and_reproduce_replays_it(notes):
    exchange = Exchange(
        method="POST", url="/api/register", request_body='{"username": "ab", "password": "x y"}',
        request_content_type="application/json", status=201, response_body='{"id": 1}' + "x" * 1000,
    )
    categories = _categories(
        notes, {"test_auth.py::test_register_rejects_invalid_usernames": F},
        **{"test_auth.py::test_register_rejects_invalid_usernames": {"message": "expected 400, got 201", "exchanges": [exchange]}},
    )
    row = summarize(categories, notes, limits_hit=[]).lost[0]
    assert row.evidence.startswith("expected 400, got 201\nPOST /api/register")
    assert "-> 201" in row.evidence and len(row.evidence) < 900
    words = shlex.split(row.reproduce)
    assert words[:5] == ["curl", "-i", "-X", "POST", "http://127.0.0.1:8000/api/register"]
    assert words[words.index("--data") + 1] == '{"username": "ab", "password": "x y"}'
    assert "Content-Type: application/json" in words


def test_a_truncated_body_is_not_replayed_and_a_test_without_exchanges_has_no_curl():
    cut = Exchange(method="POST", url="/login", request_body="a=" + "b" * 10 + "…")
    assert "--data" not in reproduce([cut], 8000)
    assert reproduce([], 8000) == ""


def test_the_assignment_s_own_reproduction_wins(notes):
    categories = _categories(notes, {"test_migrations.py::test_db_check_reports_no_changes": F})
    row = summarize(categories, notes, limits_hit=[]).lost[0]
    assert row.reproduce == "flask --app wsgi db upgrade && flask --app wsgi db check"


def test_intermittent_failures_and_limits_are_caveats(notes):
    test = "test_concurrency.py::test_concurrent_likes_are_all_counted"
    categories = _categories(notes, {test: F}, **{test: {"rerun": P}})
    summary = summarize(categories, notes, limits_hit=["memory"], review=CodeReview(
        findings=[Finding(rule="grader:debug-mode", severity=Severity.security, file="app.py", line=3, message="m")],
    ))
    assert summary.lost[0].intermittent
    assert any("passed when re-run" in c and "race" in c for c in summary.caveats)
    assert any("memory limit" in c for c in summary.caveats)
    assert "intermittent" in summary.verdict and "1 finding, 1 of them security (not scored)" in summary.verdict


def test_a_perfect_grade_says_so(notes):
    summary = summarize(_categories(notes, {"test_auth.py::test_me_returns_the_logged_in_user": P}), notes, limits_hit=[])
    assert summary.lost == [] and "Every hidden test passed." in summary.verdict
