"""Stage 5: the rubric. Pure: outcomes in, categories out, no I/O."""

from __future__ import annotations

from grader.assignments.model import Assignment
from grader.assignments.rubric import share_points
from grader.models import CategoryReport, SuiteOutcomes, TestReport


def score_outcomes(outcomes: SuiteOutcomes, assignment: Assignment) -> list[CategoryReport]:
    """Each category's points shared among its tests (equally, except the checks `[[tests]]` weighs; see
    grader/assignments/rubric.py); a test's `points` is what it earned or cost. Skipped tests do not count."""
    categories = []
    for category in assignment.categories:
        results = [r for r in outcomes.results if r.category == category.id]
        shares = share_points(category.weight, [(r.id, r.outcome) for r in results], assignment.specs_of(category))
        tests = [
            TestReport.model_validate({**r.model_dump(exclude={"category"}), "points": shares.by_test[r.id]})
            for r in results
        ]
        categories.append(
            CategoryReport(id=category.id, title=category.title, score=shares.score, max_score=category.weight, tests=tests)
        )
    return categories
