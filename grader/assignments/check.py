"""Proof that an assignment's hidden suite tells good solutions from flawed ones.

`validate_assignment` checks a folder without grading; `check_assignment` grades every solution and
compares the failing tests with what its `expected.toml` names. A solution folder is either a whole tree
(`reference`, or one in another style) or a `flaw.patch` against a whole-tree solution (its `base`,
`reference` by default), so that a flawed solution reads as its flaw; the patch is applied with
`git apply` (exact context, no fuzz) to a fresh copy of the base.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from grader.assignments.model import Assignment, AssignmentError, category_of_file, load_assignment_folder, test_functions
from grader.assignments.questions import load_bank
from grader.assignments.rubric import matches
from grader.models import GradeReport, Status, SubmissionRequest
from grader.pipeline import grade_submission, new_submission_id
from grader.settings import Settings
from grader.storage import Storage, check_result_key, open_storage


class Expectation(BaseModel):
    """A solution's `expected.toml`: which category its flaw is in and which tests must fail."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    flaw: str
    category: str = Field("", description="Empty for a correct solution.")
    must_fail: list[str] = []
    base: str = Field("reference", description="The whole-tree solution a flaw.patch applies to; a whole tree has none.")
    points_lost_at_least: float = Field(
        0, ge=0, description="The flaw's category must lose at least this many points (a security flaw costs a real share).",
    )


class SolutionCheck(BaseModel):
    name: str
    expectation: Expectation
    status: Status
    reason: str = ""
    patch_failed: bool = Field(False, description="Its flaw.patch did not apply, so nothing was graded; reason says why.")
    scores: dict[str, tuple[float, float]]
    unexpected_failures: list[str] = Field(description="Tests that failed but are not in must_fail.")
    undetected: list[str] = Field(description="Tests in must_fail that passed.")
    undercharged: str = Field("", description="Why the flaw cost less than points_lost_at_least, when it did.")
    seconds: float = Field(0.0, description="The grade's wall time.")
    lanes_s: dict[str, float] = Field({}, description="Each lane's wall time, its boot included.")

    @property
    def ok(self) -> bool:
        return self.status is Status.graded and not self.unexpected_failures and not self.undetected and not self.undercharged


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


PATCH = "flaw.patch"
_NOT_SOURCE = ("__pycache__", "*.pyc", "*.db", "expected.toml", PATCH)


class PatchError(AssignmentError):
    """A solution's flaw.patch leaves the solution root or does not apply to its base; the message says what to do."""


def is_patch(solution: Path) -> bool:
    return (solution / PATCH).is_file()


def _tree_entries(solution: Path) -> list[str]:
    """What a folder holds besides its expected.toml and flaw.patch: the files of a whole-tree solution."""
    ignored = shutil.ignore_patterns(*_NOT_SOURCE)(str(solution), os.listdir(solution))
    return sorted(set(os.listdir(solution)) - set(ignored))


def make_solution(solution: Path, dest: Path) -> Path:
    """The files of a solution in `dest`: a copy of a whole tree, or a copy of its base with flaw.patch applied."""
    if not is_patch(solution):
        shutil.copytree(solution, dest, ignore=shutil.ignore_patterns(*_NOT_SOURCE))
        return dest
    base = load_expectation(solution).base
    if not (solution.parent / base).is_dir() or is_patch(solution.parent / base):
        raise PatchError(f"{solution / 'expected.toml'}: base: {base!r} is not a whole-tree solution beside {solution.name}")
    files = _patch_files(solution / PATCH, base)  # refuses a path that leaves the root before git reads it
    shutil.copytree(solution.parent / base, dest, ignore=shutil.ignore_patterns(*_NOT_SOURCE))
    # The ceiling keeps git from taking an enclosing repository for the copy's: paths stay relative to `dest`.
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE")}
    env["GIT_CEILING_DIRECTORIES"] = str(dest.resolve().parent)
    for mode in (["--check"], []):
        run = subprocess.run(
            ["git", "apply", "--whitespace=nowarn", *mode, str((solution / PATCH).resolve())],
            cwd=dest, env=env, capture_output=True, text=True,
        )
        if run.returncode:
            raise PatchError(_stale_message(solution / PATCH, base, run.stderr, files))
    return dest


_HUNK = re.compile(r"@@ -(\d+)(?:,(\d+))? \+\d+(?:,(\d+))? @@")
_NAMED = ("--- ", "+++ ", "rename from ", "rename to ", "copy from ", "copy to ")


def _patch_files(patch: Path, base: str) -> dict[str, list[tuple[int, str]]]:
    """Each file the patch changes (relative to the solution root) with the old start line and header of each
    hunk; a PatchError when a name is absolute or climbs out with `..`."""
    files: dict[str, list[tuple[int, str]]] = {}
    current, old, new = "", 0, 0
    for line in patch.read_text(errors="replace").splitlines():
        if old > 0 or new > 0:  # inside a hunk: a line "--- x" here is a removed "-- x", not a header
            tag = line[:1]
            old -= 1 if tag in (" ", "", "-") else 0
            new -= 1 if tag in (" ", "", "+") else 0
            continue
        if hunk := _HUNK.match(line):
            old, new = int(hunk[2] or 1), int(hunk[3] or 1)
            files.setdefault(current, []).append((int(hunk[1]), line))
            continue
        names = line.removeprefix("diff --git ").split(" ") if line.startswith("diff --git ") else []
        names += [line[len(p):].split("\t")[0] for p in _NAMED if line.startswith(p)]
        for name in (n.strip('"') for n in names):
            if name != "/dev/null" and (name.startswith("/") or ".." in PurePosixPath(name).parts):
                raise PatchError(
                    f"{patch}: {name!r} leaves the solution root: a patch names files relative to the solution "
                    f"(a/notes_app/app.py), made by diffing two copies side by side; regenerate it against {base}"
                )
        if line.startswith(("--- ", "+++ ")) and names[-1] != "/dev/null":
            current = names[-1].strip('"').split("/", 1)[-1]
    return files


def _stale_message(patch: Path, base: str, stderr: str, files: dict[str, list[tuple[int, str]]]) -> str:
    """Which file and hunk git could not apply, and how to make the patch again."""
    details: list[str] = []
    for line in stderr.splitlines():
        text = line.removeprefix("error: ").strip()
        if failed := re.fullmatch(r"patch failed: (.+):(\d+)", text):
            hunks = files.get(failed[1], [])
            numbers = [i for i, (start, _) in enumerate(hunks, 1) if start == int(failed[2])]
            where = f"hunk #{numbers[0]} of {len(hunks)} ({hunks[numbers[0] - 1][1]})" if numbers else f"line {failed[2]}"
            details.append(f"{failed[1]}: {where} does not match")
        elif line.startswith("error: ") and not text.endswith(": patch does not apply"):
            details.append(text)
    return (
        f"{patch}: no longer applies to {base}: {'; '.join(details) or stderr.strip() or 'git apply failed'}. "
        f"Regenerate flaw.patch against {base}: copy {base} to a/ and b/, in b/ run `git apply --reject {patch}` and "
        f"redo the rejected hunks (then delete the *.rej files), then `git diff --no-index --no-prefix a b > {patch}`"
    )


def _solution_problems(solution: Path, expectation: Expectation, whole: set[str], apply: bool) -> list[str]:
    """A solution folder is a whole tree or a flaw.patch that applies cleanly to a whole-tree base, not both."""
    tree, where = _tree_entries(solution), solution / "expected.toml"
    if not is_patch(solution):
        if not tree:
            return [f"{solution}: empty: add the solution's files, or a {PATCH} against {expectation.base}"]
        if "base" in expectation.model_fields_set:
            return [f"{where}: base: only a solution made of a {PATCH} has a base; remove the key"]
        return []
    if tree:
        return [f"{solution}: both a {PATCH} and files ({', '.join(tree[:3])}): keep the patch or the whole tree, not both"]
    if expectation.base not in whole:
        return [f"{where}: base: {expectation.base!r} is not a whole-tree solution of this assignment ({', '.join(sorted(whole))})"]
    try:
        if not apply:
            _patch_files(solution / PATCH, expectation.base)
            return []
        with tempfile.TemporaryDirectory(prefix="grader-validate-") as tmp:
            make_solution(solution, Path(tmp) / solution.name)
    except PatchError as exc:
        return [str(exc)]
    return []


def validate_assignment(folder: Path, apply_patches: bool = True) -> list[str]:
    """Every problem of an assignment folder, each naming its file and field; empty when valid. Without
    `apply_patches`, a flaw.patch that no longer applies is left to `check_assignment`, which reports it in its
    matrix beside the other solutions (a patch leaving the solution root is refused either way)."""
    try:
        assignment = load_assignment_folder(folder)
    except AssignmentError as exc:
        return [str(exc)]
    problems: list[str] = []
    if not (folder / assignment.brief).is_file():
        problems.append(f"{folder / 'assignment.toml'}: brief: {assignment.brief} does not exist")
    try:
        load_bank(assignment)
    except AssignmentError as exc:
        problems.append(str(exc))
    functions: dict[str, set[str]] = {}
    for category in assignment.categories:
        path = assignment.tests_dir / category.test_file
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
    whole = {s.name for s in solutions if not is_patch(s)}
    for solution in solutions:
        try:
            expectation = load_expectation(solution)
        except AssignmentError as exc:
            problems.append(str(exc))
            continue
        problems.extend(_solution_problems(solution, expectation, whole, apply_patches))
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
    repo = make_solution(solution, workdir / solution.name)
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", f"solution {solution.name}"]):
        subprocess.run(
            ["git", "-c", "user.name=grader", "-c", "user.email=grader@localhost", *args],
            cwd=repo, check=True, capture_output=True,
        )
    return repo


def compare(name: str, expectation: Expectation, report: GradeReport) -> SolutionCheck:
    failed = {t.id for c in report.categories for t in c.tests if t.outcome.lost}
    unexpected = sorted(t for t in failed if not any(matches(p, t) for p in expectation.must_fail))
    undetected = sorted(p for p in expectation.must_fail if not any(matches(p, t) for t in failed))
    scores = {c.id: (c.score, c.max_score) for c in report.categories}
    score, maximum = scores.get(expectation.category, (0.0, 0.0))
    undercharged = (
        f"{expectation.category} lost {maximum - score:g} points, expected.toml says at least "
        f"{expectation.points_lost_at_least:g}"
        if expectation.category in scores and maximum - score < expectation.points_lost_at_least else ""
    )
    return SolutionCheck(
        name=name, expectation=expectation, status=report.status, reason=report.reason, scores=scores,
        unexpected_failures=unexpected, undetected=undetected, undercharged=undercharged,
        seconds=report.timings.total_s, lanes_s=report.timings.lanes_s,
    )


def check_assignment(
    assignment: Assignment,
    settings: Settings,
    on_solution: Callable[[SolutionCheck], None] | None = None,
    jobs: int = 1,
    only: list[str] | None = None,
    storage: Storage | None = None,
) -> CheckResult:
    """Grade every solution of the assignment (`jobs` at a time, or those named in `only`) and compare
    with its expected.toml, recorded in storage as `checks/<id>.json` (a partial check is not recorded as the
    assignment's check). Failed tests are not re-run for diagnosis: a re-run changes no score, and in flask-jobs
    one costs minutes of broker timeouts."""
    started = time.monotonic()
    settings = settings.replace(diagnosis_reruns=0)
    with tempfile.TemporaryDirectory(prefix="grader-check-") as tmp:

        def check_one(folder: Path) -> SolutionCheck:
            expectation = load_expectation(folder)
            try:
                repo = _as_repository(folder, Path(tmp))
            except PatchError as exc:  # this solution cannot be made; the others still run
                check = SolutionCheck(
                    name=folder.name, expectation=expectation, status=Status.rejected, reason=str(exc),
                    patch_failed=True, scores={}, unexpected_failures=[], undetected=[],
                )
            else:
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
    storage = storage or open_storage(settings)
    storage.put(check_result_key(assignment.id), json.dumps(result.model_dump(mode="json"), indent=2).encode())
    return result
