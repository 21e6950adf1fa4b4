"""A real grade of a flawed solution carries its judgement beside the score, and writes every export."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import jsonschema
import pytest

from grader.assignments.check import make_solution
from grader.models import Severity, Status, TestOutcome
from grader.settings import PROJECT_ROOT

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SOLUTIONS = PROJECT_ROOT / "assignments" / "flask-notes" / "solutions"
CTRF_SCHEMA = PROJECT_ROOT / "tests" / "unit" / "stages" / "ctrf.schema.json"


def test_a_flawed_solution_s_report_says_why_what_the_code_shows_and_what_to_ask(grade, git_repo, settings, tmp_path):
    """open-redirect: the 10 points of its weighted spec lost, called out first as security with a reproduction;
    the review and the candidate's own tests (the reference's 8, one of which sees the flaw) beside the score;
    questions chosen by the lost test; report.pdf, junit.xml and ctrf.json written, the JUnit failures being the
    failed tests."""
    report = grade(str(git_repo(make_solution(SOLUTIONS / "open-redirect", tmp_path / "open-redirect"))))
    assert report.status is Status.graded, report.reason
    assert report.score == 90
    first = report.summary.lost[0]
    assert first.severity is Severity.security and first.category == "access_split"
    assert "open_redirect" in first.test and first.rubric.startswith("`POST /login` never sends the browser")
    assert "evil.example" in first.evidence and first.reproduce.startswith("curl")
    assert sum(row.points for row in report.summary.lost) == pytest.approx(10, abs=0.01)
    assert "Security: open redirect failed, costing 10 points." in report.summary.verdict
    failed = [t for c in report.categories for t in c.tests if t.outcome is not TestOutcome.passed]
    assert failed and all(t.rerun is TestOutcome.failed for t in failed), "each failure re-run once, failing again"

    assert report.review is not None and report.review.error == "" and report.review.metrics["blueprints"] == 2
    tests = report.candidate_tests
    assert tests is not None and tests.ran and tests.passed == 7 and tests.failed == 1, tests
    assert ["redirect" in test for test in tests.failing] == [True], "the reference's own open-redirect test sees the flaw"
    assert tests.coverage_percent is not None and tests.coverage_percent > 50
    asked = {f.question: f.because for f in report.follow_ups if not f.depth}
    assert any(q.startswith("Your login accepts a `next` parameter") for q in asked)
    assert any(f.depth for f in report.follow_ups)

    folder = settings.paths.reports_dir / report.id
    assert (folder / "report.pdf").read_bytes().startswith(b"%PDF")
    junit = ET.parse(folder / "junit.xml").getroot()
    assert sum(int(suite.get("failures", 0)) + int(suite.get("errors", 0)) for suite in junit.iter("testsuite")) == len(failed)
    ctrf = json.loads((folder / "ctrf.json").read_text())
    jsonschema.validate(ctrf, json.loads(CTRF_SCHEMA.read_text()))
    assert ctrf["results"]["summary"]["failed"] == len(failed)
    saved = json.loads((folder / "report.json").read_text())
    assert set(saved) >= {"summary", "review", "follow_ups", "candidate_tests"}
    assert "Why this score" in (folder / "report.html").read_text()
