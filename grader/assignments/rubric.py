"""What `assignment.toml` says of particular hidden tests (`[[tests]]`): their weight, severity, rubric line and
reproduction; and how a category's points are shared among its tests.

Most tests of a category share its points equally. A spec (an entry of `[[tests]]`) with `points` weighs its
tests (ids or patterns) together: they carry those points, lost once when any of them fails, so a flaw that
several tests see (three open-redirect variants) costs the spec's points, not three times a small share.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator

from grader.models import Severity, TestOutcome


class TestSpec(BaseModel):
    """One `[[tests]]` entry: what the assignment says of one or more hidden tests."""

    __test__ = False
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, description="What its tests look at, in a few words: `password storage`.")
    match: list[str] = Field(
        min_length=1, description="Test ids (`test_auth.py::test_x`) or fnmatch patterns; an id without `[...]` "
        "also matches its parametrized variants.",
    )
    points: float | None = Field(
        None, gt=0, description="Points of its category its tests carry together, lost once when any of them fails; "
        "the category's other tests share the rest equally. None: it shares like any other test.",
    )
    severity: Severity | None = Field(None, description="Overrides the category's severity for these tests.")
    rubric: str | None = Field(None, description="The brief's own sentence these tests check, quoted in the report.")
    reproduce: str | None = Field(
        None, description="A command a reviewer or the candidate runs against their own instance to see the flaw.",
    )

    @field_validator("match")
    @classmethod
    def _test_ids(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            if "::" not in pattern or not pattern.split("::", 1)[0].startswith("test_"):
                raise ValueError(f"{pattern!r}: a test id or pattern such as test_auth.py::test_login_works")
        return patterns

    @property
    def file(self) -> str:
        """The hidden test file its tests are in (all of an entry's patterns name one file)."""
        return self.match[0].split("::", 1)[0]

    def matches(self, test_id: str) -> bool:
        return any(matches(pattern, test_id) for pattern in self.match)


def matches(pattern: str, test_id: str) -> bool:
    """`file::name` matches that test and its parametrized variants; other patterns are fnmatch patterns."""
    if test_id == pattern or ("[" not in pattern and test_id.startswith(pattern + "[")):
        return True
    return any(ch in pattern for ch in "*?[") and fnmatch.fnmatchcase(test_id, pattern)


def spec_of(specs: Sequence[TestSpec], test_id: str) -> TestSpec | None:
    """The first entry naming this test, if any."""
    return next((spec for spec in specs if spec.matches(test_id)), None)


@dataclass(frozen=True)
class TestPoints:
    """What each test of a category earned (passed) or cost (failed), and the category's score."""

    __test__ = False

    by_test: dict[str, float]
    score: float


def share_points(weight: float, outcomes: Sequence[tuple[str, TestOutcome]], specs: Sequence[TestSpec]) -> TestPoints:
    """Share a category's `weight` among its tests. A spec with points earns them when all of its counted tests
    passed and loses them at once otherwise, its failed tests sharing the loss; the other tests share the rest.
    Skipped tests count for nothing and the points of what was counted are scaled back up to `weight`."""
    counted = [(test, outcome) for test, outcome in outcomes if outcome is not TestOutcome.skipped]
    groups: dict[int, list[tuple[str, TestOutcome]]] = {}
    plain: list[tuple[str, TestOutcome]] = []
    for test, outcome in counted:
        spec = spec_of(specs, test)
        if spec is not None and spec.points is not None:
            groups.setdefault(specs.index(spec), []).append((test, outcome))
        else:
            plain.append((test, outcome))
    fixed = sum(specs[i].points or 0.0 for i in groups)
    declared = sum(spec.points or 0.0 for spec in specs)
    rest = max(weight - declared, 0.0) if plain else 0.0
    available = fixed + rest
    scale = weight / available if available else 0.0
    by_test = {test: 0.0 for test, _ in outcomes}
    for index, tests in groups.items():
        points = (specs[index].points or 0.0) * scale
        failed = [test for test, outcome in tests if outcome is not TestOutcome.passed]
        for test in failed or [test for test, _ in tests]:
            by_test[test] = points / len(failed or tests)
    for test, _ in plain:
        by_test[test] = rest * scale / len(plain)
    earned = sum(by_test[test] for test, outcome in counted if outcome is TestOutcome.passed)  # before rounding
    return TestPoints({test: round(points, 4) for test, points in by_test.items()}, round(earned, 2))
