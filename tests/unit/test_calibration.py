"""Calibration: expected.toml against a graded report, and folder validation that names file and field."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

from grader.assignments.check import Expectation, compare, validate_assignment
from grader.models import CategoryReport, GradeReport, SourceInfo, Status, TestOutcome, TestReport
from grader.settings import PROJECT_ROOT


def _report(outcomes: dict[str, TestOutcome]) -> GradeReport:
    tests = [TestReport(id=k, title=k, outcome=v) for k, v in outcomes.items()]
    return GradeReport(
        id="s", assignment="a", source=SourceInfo(url="u"), status=Status.graded, grader_version="0",
        created_at=datetime.now(UTC), categories=[CategoryReport(id="auth", title="A", score=0, max_score=25, tests=tests)],
    )


def test_expected_failures_match():
    """A flawed solution failing exactly its must_fail tests (parametrized ones by prefix) is as expected."""
    expectation = Expectation(flaw="x", category="auth", must_fail=["test_auth.py::test_a"])
    report = _report({"test_auth.py::test_a[1]": TestOutcome.failed, "test_auth.py::test_b": TestOutcome.passed})
    assert compare("sol", expectation, report).ok


def test_surprise_failure_and_undetected_flaw_are_mismatches():
    """An unnamed failure and a named test that passed are both reported."""
    expectation = Expectation(flaw="x", category="auth", must_fail=["test_auth.py::test_a"])
    report = _report({"test_auth.py::test_a": TestOutcome.passed, "test_auth.py::test_b": TestOutcome.error})
    check = compare("sol", expectation, report)
    assert not check.ok
    assert check.unexpected_failures == ["test_auth.py::test_b"]
    assert check.undetected == ["test_auth.py::test_a"]


def test_validate_names_file_and_field(tmp_path):
    """A missing brief, a test file without category and a bad must_fail id are each reported."""
    folder = tmp_path / "flask-notes"
    shutil.copytree(PROJECT_ROOT / "assignments" / "flask-notes", folder,
                    ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "brief.md").unlink()
    (folder / "tests" / "test_bonus.py").write_text("def test_x():\n    pass\n")
    (folder / "solutions" / "reference" / "expected.toml").write_text(
        'flaw = "x"\ncategory = "auth"\nmust_fail = ["test_auth.py::test_does_not_exist"]\n'
    )
    problems = "\n".join(validate_assignment(folder))
    assert "assignment.toml: brief: brief.md does not exist" in problems
    assert "test_bonus.py: no category 'bonus'" in problems
    assert "reference/expected.toml: must_fail: 'test_auth.py::test_does_not_exist' is not a test" in problems


def test_validate_reports_bad_toml_field(tmp_path):
    """An assignment.toml with a wrong type names the field."""
    (tmp_path / "assignment.toml").write_text('id = "x"\ntitle = 3\nversion = "1"\ncategories = []\n')
    problems = validate_assignment(tmp_path)
    assert len(problems) == 1 and "assignment.toml: title" in problems[0] and "categories" in problems[0]
