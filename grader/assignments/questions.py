"""An assignment's follow-up question bank (`questions.toml`) and how a report's questions are chosen from it.

Each question names what calls for it (`when`): hidden test ids or patterns, `category:<id>` (the category
lost points), review rules (`grader:debug-mode`, `ruff:S608`, or a prefix ending in `*`), and a few facts of
the grade (`candidate-tests:none`, `candidate-tests:failing`, `intermittent`). Depth questions (`depth = true`)
are asked whatever the grade, so a perfect submission still gets questions that tell experience apart.
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from grader.assignments.model import Assignment, AssignmentError
from grader.assignments.rubric import matches
from grader.models import CandidateTests, CategoryReport, CodeReview, FollowUp, Severity

FACTS = ("candidate-tests:none", "candidate-tests:failing", "intermittent")
MAX_CHOSEN = 5
DEPTH_WHEN_PERFECT = 3
DEPTH_OTHERWISE = 1
SECURITY_FINDING = 5.0


class Question(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    question: str = Field(min_length=1)
    when: list[str] = Field([], description="What calls for it; empty only for a depth question.")
    strong_answer: list[str] = Field(min_length=1, description="What a strong answer includes.")
    depth: bool = False

    @model_validator(mode="after")
    def _called_for(self) -> Question:
        if not self.when and not self.depth:
            raise ValueError(f"question {self.id}: `when` names what calls for it, unless it is a depth question")
        return self


class QuestionBank(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    question: list[Question] = Field(min_length=1)


def load_bank(assignment: Assignment) -> QuestionBank | None:
    """The assignment's bank, or None when it has none; an invalid bank raises AssignmentError naming the field."""
    path = assignment.folder / assignment.questions
    if not path.is_file():
        return None
    try:
        bank = QuestionBank.model_validate(tomllib.loads(path.read_text()))
    except tomllib.TOMLDecodeError as exc:
        raise AssignmentError(f"{path}: not valid TOML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise AssignmentError(f"{path}: {problems}") from None
    _check_keys(bank, assignment, path)
    return bank


def _check_keys(bank: QuestionBank, assignment: Assignment, path: Path) -> None:
    from grader.assignments.model import test_functions

    categories = {c.id for c in assignment.categories}
    tests = [
        f"{file.name}::{name}" for file in sorted(assignment.tests_dir.glob("test_*.py")) for name in test_functions(file)
    ]
    ids = [q.id for q in bank.question]
    if len(ids) != len(set(ids)):
        raise AssignmentError(f"{path}: question ids must be unique, got {ids}")
    for question in bank.question:
        for key in question.when:
            known = (
                key in FACTS
                or (key.startswith("category:") and key.removeprefix("category:") in categories)
                or key.startswith(("grader:", "ruff:"))
                or ("::" in key and any(matches(key.split("[", 1)[0], test) for test in tests))
            )
            if not known:
                raise AssignmentError(
                    f"{path}: question {question.id}: when: {key!r} is not a hidden test, a category:<id>, "
                    f"a review rule (grader:..., ruff:...) or one of {', '.join(FACTS)}"
                )


def choose_follow_ups(
    bank: QuestionBank | None, categories: list[CategoryReport], review: CodeReview | None,
    candidate_tests: CandidateTests | None,
) -> list[FollowUp]:
    """The questions this grade calls for, the weightiest first (at most MAX_CHOSEN), then depth questions: more
    of them when nothing called for a question. A question weighs the points its lost tests cost, plus a point
    for each other reason (SECURITY_FINDING for a security finding of the review), so the question about the
    flaw that cost most comes first."""
    if bank is None:
        return []
    evidence = _evidence(categories, review, candidate_tests)
    weights = _weights(categories, review)
    called = []
    for order, question in enumerate(q for q in bank.question if q.when):
        because = list(dict.fromkeys(reason for key in question.when for reason in _reasons(key, evidence)))
        if because:
            called.append((-sum(weights.get(reason, 1.0) for reason in because), order, question, because))
    called.sort(key=lambda row: row[:2])
    chosen = [
        FollowUp(question=q.question, because=because, strong_answer=q.strong_answer) for *_, q, because in called[:MAX_CHOSEN]
    ]
    depth = [q for q in bank.question if q.depth and not q.when]
    chosen += [
        FollowUp(question=q.question, because=["depth"], strong_answer=q.strong_answer, depth=True)
        for q in depth[: DEPTH_WHEN_PERFECT if not chosen else DEPTH_OTHERWISE]
    ]
    return chosen


def _weights(categories: list[CategoryReport], review: CodeReview | None) -> dict[str, float]:
    """What each reason weighs: a lost test its points, a security finding SECURITY_FINDING; others count 1."""
    weights = {
        t.id: max(t.points, 1.0) for c in categories for t in c.tests if t.outcome.lost
    }
    for finding in review.findings if review else []:
        if finding.severity is Severity.security:
            weights[finding.rule] = SECURITY_FINDING
    return weights


def _evidence(
    categories: list[CategoryReport], review: CodeReview | None, candidate_tests: CandidateTests | None
) -> dict[str, list[str]]:
    failed = [t for c in categories for t in c.tests if t.outcome.lost]
    facts = []
    if candidate_tests is not None and not candidate_tests.ran:
        facts.append("candidate-tests:none")
    if candidate_tests is not None and (candidate_tests.failed or candidate_tests.errors):
        facts.append("candidate-tests:failing")
    if any(t.intermittent for t in failed):
        facts.append("intermittent")
    return {
        "tests": [t.id for t in failed],
        "categories": [c.id for c in categories if c.score < c.max_score],
        "rules": list(dict.fromkeys(f.rule for f in (review.findings if review else []))),
        "facts": facts,
    }


def _reasons(key: str, evidence: dict[str, list[str]]) -> list[str]:
    if key in FACTS:
        return [key] if key in evidence["facts"] else []
    if key.startswith("category:"):
        return [key] if key.removeprefix("category:") in evidence["categories"] else []
    if key.startswith(("grader:", "ruff:")):
        return [rule for rule in evidence["rules"] if fnmatch.fnmatchcase(rule, key)]
    return [test for test in evidence["tests"] if matches(key, test)]
