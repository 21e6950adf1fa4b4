"""Proof that an assignment's hidden suite tells good solutions from flawed ones.

`validate_assignment` checks a folder without grading; `check_assignment` grades every solution and
compares the failing tests with what its `expected.toml` names.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from grader.assignments.model import Assignment, AssignmentError, category_of_file, load_assignment_folder, test_functions
from grader.models import GradeReport, Status, SubmissionRequest, TestOutcome
from grader.pipeline import grade_submission, new_submission_id
from grader.settings import Settings


class Expectation(BaseModel):
    """A solution's `expected.toml`: which category its flaw is in and which tests must fail."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    flaw: str
    category: str = Field("", description="Empty for a correct solution.")
    must_fail: list[str] = []


class SolutionCheck(BaseModel):
    name: str
    expectation: Expectation
    status: Status
    reason: str = ""
    scores: dict[str, tuple[float, float]]
    unexpected_failures: list[str] = Field(description="Tests that failed but are not in must_fail.")
    undetected: list[str] = Field(description="Tests in must_fail that passed.")

    @property
    def ok(self) -> bool:
        return self.status is Status.graded and not self.unexpected_failures and not self.undetected


class CheckResult(BaseModel):
    assignment: str
    solutions: list[SolutionCheck]
    seconds: float

    @property
    def ok(self) -> bool:
        return bool(self.solutions) and all(s.ok for s in self.solutions)


def load_expectation(folder: Path) -> Expectation:
    path = folder / "expected.toml"
    try:
        return Expectation.model_validate(tomllib.loads(path.read_text()))
    except FileNotFoundError:
        raise AssignmentError(f"{path}: file not found; every solution names its expected failures") from None
    except tomllib.TOMLDecodeError as exc:
        raise AssignmentError(f"{path}: not valid TOML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise AssignmentError(f"{path}: {problems}") from None


def solution_folders(assignment: Assignment) -> list[Path]:
    root = assignment.folder / "solutions"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def validate_assignment(folder: Path) -> list[str]:
    """Every problem of an assignment folder, each naming its file and field; empty when valid."""
    try:
        assignment = load_assignment_folder(folder)
    except AssignmentError as exc:
        return [str(exc)]
    problems: list[str] = []
    if not (folder / assignment.brief).is_file():
        problems.append(f"{folder / 'assignment.toml'}: brief: {assignment.brief} does not exist")
    functions: dict[str, set[str]] = {}
    for category in assignment.categories:
        path = assignment.tests_dir / f"test_{category.id}.py"
        if not path.is_file():
            problems.append(f"{path}: missing: category {category.id!r} has no test file")
            continue
        try:
            functions[path.name] = test_functions(path)
        except SyntaxError as exc:
            problems.append(f"{path}: line {exc.lineno}: {exc.msg}")
            continue
        if not functions[path.name]:
            problems.append(f"{path}: category {category.id!r} has no test functions")
    known = {c.id for c in assignment.categories}
    for path in sorted(assignment.tests_dir.glob("test_*.py")):
        if category_of_file(path) not in known:
            problems.append(
                f"{path}: no category {category_of_file(path)!r} in assignment.toml, so its tests score nothing"
            )
    solutions = solution_folders(assignment)
    if not any((s / "expected.toml").is_file() and s.name == "reference" for s in solutions):
        problems.append(f"{folder / 'solutions'}: reference: a reference solution with expected.toml is required")
    for solution in solutions:
        try:
            expectation = load_expectation(solution)
        except AssignmentError as exc:
            problems.append(str(exc))
            continue
        where = f"{solution / 'expected.toml'}"
        if expectation.category and expectation.category not in known:
            problems.append(f"{where}: category: {expectation.category!r} is not a category of the assignment")
        if expectation.category and not expectation.must_fail:
            problems.append(f"{where}: must_fail: a flawed solution must name at least one test that catches it")
        for test_id in expectation.must_fail:
            file, _, name = test_id.partition("::")
            if name.split("[", 1)[0] not in functions.get(file, set()):
                problems.append(f"{where}: must_fail: {test_id!r} is not a test of the hidden suite")
            elif file != f"test_{expectation.category}.py":
                problems.append(f"{where}: must_fail: {test_id!r} is outside the flaw's category {expectation.category!r}")
    return problems


def _as_repository(solution: Path, workdir: Path) -> Path:
    repo = workdir / solution.name
    shutil.copytree(solution, repo, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.db", "expected.toml"))
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", f"solution {solution.name}"]):
        subprocess.run(
            ["git", "-c", "user.name=grader", "-c", "user.email=grader@localhost", *args],
            cwd=repo, check=True, capture_output=True,
        )
    return repo


def compare(name: str, expectation: Expectation, report: GradeReport) -> SolutionCheck:
    failed = {t.id for c in report.categories for t in c.tests if t.outcome in (TestOutcome.failed, TestOutcome.error)}

    def matches(test_id: str, pattern: str) -> bool:
        return test_id == pattern or ("[" not in pattern and test_id.startswith(pattern + "["))

    unexpected = sorted(t for t in failed if not any(matches(t, p) for p in expectation.must_fail))
    undetected = sorted(p for p in expectation.must_fail if not any(matches(t, p) for t in failed))
    return SolutionCheck(
        name=name, expectation=expectation, status=report.status, reason=report.reason,
        scores={c.id: (c.score, c.max_score) for c in report.categories},
        unexpected_failures=unexpected, undetected=undetected,
    )


def check_assignment(
    assignment: Assignment,
    settings: Settings,
    on_solution: Callable[[SolutionCheck], None] | None = None,
    jobs: int = 1,
    only: list[str] | None = None,
) -> CheckResult:
    """Grade every solution of the assignment (`jobs` at a time, or those named in `only`) and compare
    with its expected.toml; a partial check is not recorded as the assignment's check."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="grader-check-") as tmp:

        def check_one(folder: Path) -> SolutionCheck:
            expectation = load_expectation(folder)
            repo = _as_repository(folder, Path(tmp))
            request = SubmissionRequest(id=new_submission_id(), source=str(repo), assignment=assignment.id)
            check = compare(folder.name, expectation, grade_submission(request, settings))
            if on_solution:
                on_solution(check)
            return check

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            folders = solution_folders(assignment)
            if only:
                unknown = sorted(set(only) - {f.name for f in folders})
                if unknown:
                    raise AssignmentError(f"{assignment.id}: no solution named {', '.join(unknown)}")
                folders = [f for f in folders if f.name in only]
            checks = list(pool.map(check_one, folders))
    result = CheckResult(assignment=assignment.id, solutions=checks, seconds=round(time.monotonic() - started, 1))
    if only:
        return result
    record = settings.paths.data_dir / "checks" / f"{assignment.id}.json"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(result.model_dump(mode="json"), indent=2))
    return result
