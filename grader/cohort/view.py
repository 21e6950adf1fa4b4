"""The cohort of an assignment as reviewers and administrators read it, and a report's live place in it.

`assignment_view` is one model for `grader cohort`, the assignment page and its API: the score distribution,
each category's pass rate, the hidden tests most candidates fail (an administrator reads these to judge
whether a test is fair) and the pairs of submissions similar enough to review. `live_report` gives a stored
report today's `similar` and `cohort`: report.json keeps them as they were when it was graded, while later
submissions (and deletions) change both.
"""

from __future__ import annotations

from collections import Counter
from statistics import mean, median

from pydantic import Field

from grader.cohort.place import matches, position
from grader.cohort.store import CohortStore, Member
from grader.models import Frozen, GradeReport
from grader.settings import CohortSettings

BINS = 10
HARDEST = 10


class Bin(Frozen):
    low: float = Field(description="Percent of the maximum score, inclusive.")
    high: float = Field(description="Percent, exclusive (inclusive for the last bin).")
    count: int


class CategoryRate(Frozen):
    id: str
    title: str
    mean_percent: float = Field(description="The cohort's mean score in this category, in percent of its points.")
    pass_rate: float = Field(description="Percent of submissions with every test of this category passed.")


class HardTest(Frozen):
    id: str
    category: str
    title: str
    failed: int
    n: int
    failure_rate: float = Field(description="Percent of the submissions that ran it and did not pass it.")


class PairView(Frozen):
    a: str
    b: str
    score: float
    same_candidate: bool
    flagged: bool


class CohortView(Frozen):
    assignment: str
    version: str | None = Field(description="The assignment version shown: the latest one graded.")
    versions: list[str]
    n: int
    mean_percent: float | None
    median_percent: float | None
    histogram: list[Bin]
    categories: list[CategoryRate]
    hardest: list[HardTest]
    pairs: list[PairView] = Field(description="Pairs at or above the threshold, closest first; resubmissions labelled.")
    threshold: float
    rank_min_n: int


def assignment_view(store: CohortStore, assignment: str, settings: CohortSettings, version: str | None = None) -> CohortView:
    everyone = store.members(assignment)
    versions = sorted({m.assignment_version or "" for m in everyone} - {""})
    chosen = version if version is not None else (everyone[-1].assignment_version if everyone else None)
    members = [m for m in everyone if m.assignment_version == chosen]
    percents = [_percent(m.score, m.max_score) for m in members]
    pairs = [
        PairView(
            a=p.a, b=p.b, score=p.score, same_candidate=p.same_candidate,
            flagged=p.score >= settings.similarity_threshold and not p.same_candidate,
        )
        for p in store.pairs_at_least(assignment, settings.similarity_threshold)
    ]
    return CohortView(
        assignment=assignment, version=chosen, versions=versions, n=len(members),
        mean_percent=round(mean(percents), 1) if percents else None,
        median_percent=round(median(percents), 1) if percents else None,
        histogram=histogram(percents), categories=category_rates(members), hardest=hardest_tests(members),
        pairs=pairs, threshold=settings.similarity_threshold, rank_min_n=settings.rank_min_n,
    )


def histogram(percents: list[float], bins: int = BINS) -> list[Bin]:
    width = 100 / bins
    counts = Counter(min(int(p // width), bins - 1) for p in percents)
    return [Bin(low=i * width, high=(i + 1) * width, count=counts.get(i, 0)) for i in range(bins)]


def category_rates(members: list[Member]) -> list[CategoryRate]:
    by_id: dict[str, list] = {}
    titles: dict[str, str] = {}
    for member in members:
        for category in member.categories:
            by_id.setdefault(category.id, []).append(category)
            titles.setdefault(category.id, category.title)
    return [
        CategoryRate(
            id=cid, title=titles[cid],
            mean_percent=round(mean(_percent(c.score, c.max_score) for c in results), 1),
            pass_rate=round(100 * sum(c.passed == c.total for c in results) / len(results), 1),
        )
        for cid, results in by_id.items()
    ]


def hardest_tests(members: list[Member], limit: int = HARDEST) -> list[HardTest]:
    """The tests most often not passed (failed, errored, skipped), most first; tests nobody failed are left out."""
    ran: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    about: dict[str, tuple[str, str]] = {}
    for member in members:
        for test in member.tests:
            ran[test.id] += 1
            failed[test.id] += test.outcome != "passed"
            about.setdefault(test.id, (test.category, test.title))
    ordered = sorted((t for t in ran if failed[t]), key=lambda t: (-failed[t] / ran[t], -failed[t], t))
    return [
        HardTest(
            id=t, category=about[t][0], title=about[t][1], failed=failed[t], n=ran[t],
            failure_rate=round(100 * failed[t] / ran[t], 1),
        )
        for t in ordered[:limit]
    ]


def live_report(report: GradeReport, store: CohortStore, settings: CohortSettings) -> GradeReport:
    """The report with `similar` and `cohort` as they stand now; unchanged when it was never placed."""
    member = store.member(report.id)
    if member is None:
        return report
    cohort = position(store.scores(member.assignment, member.assignment_version), report.id, settings)
    return report.model_copy(update={"similar": matches(report.id, store.pairs_of(report.id), settings), "cohort": cohort})


def _percent(score: float, max_score: float) -> float:
    return 100 * score / max_score if max_score else 0.0
