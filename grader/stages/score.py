"""Stage 5: the rubric. Pure: outcomes in, categories out, no I/O."""

from __future__ import annotations

from grader.assignments.model import Assignment
from grader.models import CategoryReport, SuiteOutcomes, TestOutcome, TestReport


def score_outcomes(outcomes: SuiteOutcomes, assignment: Assignment) -> list[CategoryReport]:
    """Each category earns its weight times the share of its tests that passed; skipped tests do not count."""
    categories = []
    for category in assignment.categories:
        results = [r for r in outcomes.results if r.category == category.id]
        counted = [r for r in results if r.outcome is not TestOutcome.skipped]
        passed = sum(r.outcome is TestOutcome.passed for r in counted)
        score = round(category.weight * passed / len(counted), 2) if counted else 0.0
        tests = [TestReport.model_validate(r.model_dump(exclude={"category"})) for r in results]
        categories.append(
            CategoryReport(id=category.id, title=category.title, score=score, max_score=category.weight, tests=tests)
        )
    return categories
