"""Scoring: weights per category, partial credit by tests passed."""

from __future__ import annotations

from grader.assignments.model import Assignment, Category
from grader.models import SuiteOutcomes, TestOutcome, TestResult
from grader.stages.score import score_outcomes

ASSIGNMENT = Assignment(
    id="demo", title="Demo", version="1",
    categories=[Category(id="auth", title="Auth", weight=25), Category(id="misc", title="Misc", weight=10)],
)


def _result(category: str, outcome: TestOutcome, n: int) -> TestResult:
    return TestResult(id=f"test_{category}.py::t{n}", title="t", category=category, outcome=outcome)


def test_partial_credit_by_share_of_passed_tests():
    """Three of four passed earns three quarters of the weight."""
    outcomes = SuiteOutcomes(
        results=[_result("auth", TestOutcome.passed, i) for i in range(3)] + [_result("auth", TestOutcome.failed, 3)]
    )
    auth, misc = score_outcomes(outcomes, ASSIGNMENT)
    assert (auth.score, auth.max_score) == (18.75, 25)
    assert (misc.score, misc.max_score, misc.tests) == (0.0, 10, [])


def test_skipped_tests_do_not_count_and_errors_do():
    """A skipped test leaves the denominator; an errored one counts as lost."""
    outcomes = SuiteOutcomes(
        results=[
            _result("misc", TestOutcome.passed, 0),
            _result("misc", TestOutcome.skipped, 1),
            _result("misc", TestOutcome.error, 2),
        ]
    )
    _, misc = score_outcomes(outcomes, ASSIGNMENT)
    assert misc.score == 5.0
    assert [t.outcome for t in misc.tests] == [TestOutcome.passed, TestOutcome.skipped, TestOutcome.error]


def test_results_of_unknown_categories_are_ignored():
    """A test outside the rubric earns nothing."""
    outcomes = SuiteOutcomes(results=[_result("bonus", TestOutcome.passed, 0)])
    assert sum(c.score for c in score_outcomes(outcomes, ASSIGNMENT)) == 0
