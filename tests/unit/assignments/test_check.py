"""The check: expected.toml against a graded report, folder validation that names file and field, and solutions
made of a flaw.patch against the reference (applied, reproduced, stale, refused) beside whole copies."""

from __future__ import annotations

import shutil
import stat
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from grader.assignments import check as check_module
from grader.assignments.check import (
    Expectation,
    PatchError,
    _as_repository,
    check_assignment,
    compare,
    load_expectation,
    make_solution,
    validate_assignment,
)
from grader.assignments.matrix import surprises
from grader.assignments.model import load_assignment_folder
from grader.models import CategoryReport, GradeReport, SourceInfo, Status, SubmissionRequest, TestOutcome, TestReport
from grader.settings import PROJECT_ROOT, Settings

FLASK_NOTES = PROJECT_ROOT / "assignments" / "flask-notes"


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


def test_a_flaw_that_costs_less_than_expected_is_a_mismatch():
    """points_lost_at_least proves the weights: a security flaw that costs a small share is a mismatch."""
    expectation = Expectation(flaw="x", category="auth", must_fail=["test_auth.py::test_a"], points_lost_at_least=10)
    report = _report({"test_auth.py::test_a": TestOutcome.failed})
    cheap = report.model_copy(update={"categories": [report.categories[0].model_copy(update={"score": 23})]})
    assert compare("sol", expectation, report).ok
    assert compare("sol", expectation, cheap).undercharged == "auth lost 2 points, expected.toml says at least 10"


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


def _files(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under root with its bytes and permission bits."""
    return {
        str(p.relative_to(root)): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode)) for p in sorted(root.rglob("*")) if p.is_file()
    }


def _flaw_patch(base: Path, flawed: Path, work: Path) -> str:
    """The patch as the README says to make it: two copies side by side, `git diff --no-index --no-prefix a b`."""
    shutil.copytree(base, work / "a", ignore=shutil.ignore_patterns("expected.toml"))
    shutil.copytree(flawed, work / "b", ignore=shutil.ignore_patterns("expected.toml"))
    run = subprocess.run(["git", "diff", "--no-index", "--no-prefix", "--no-color", "a", "b"], cwd=work,
                         capture_output=True, text=True)
    assert run.returncode == 1, run.stderr  # 1: the trees differ
    return run.stdout


@pytest.fixture
def notes_copy(tmp_path: Path) -> Path:
    """A copy of flask-notes to change freely."""
    folder = tmp_path / "flask-notes"
    shutil.copytree(FLASK_NOTES, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def test_flaw_patch_reproduces_the_flawed_copy(tmp_path):
    """A patch made by the README's recipe rebuilds the flawed tree byte for byte: edits, new and deleted files,
    a .gitignore and an executable bit."""
    solutions = tmp_path / "solutions"
    reference, flawed = solutions / "reference", tmp_path / "flawed"
    (reference / "app").mkdir(parents=True)
    (reference / "app" / "views.py").write_text("def view():\n    return 'ok'\n")
    (reference / "old.txt").write_text("gone soon\n")
    (reference / ".gitignore").write_text("*.db\n")
    (reference / "run.sh").write_text("#!/bin/sh\nexec gunicorn wsgi:app\n")
    (reference / "expected.toml").write_text('flaw = "none"\n')
    shutil.copytree(reference, flawed)
    (flawed / "app" / "views.py").write_text("def view():\n    return 'flawed'\n")
    (flawed / "old.txt").unlink()
    (flawed / "app" / "new.py").write_text("X = 1")  # no newline at the end
    (flawed / ".gitignore").write_text("*.db\n*.log\n")
    (flawed / "run.sh").chmod(0o755)
    (solutions / "flawed").mkdir()
    (solutions / "flawed" / "flaw.patch").write_text(_flaw_patch(reference, flawed, tmp_path / "diff"))
    (solutions / "flawed" / "expected.toml").write_text('flaw = "x"\ncategory = "auth"\nmust_fail = ["t"]\n')
    made = make_solution(solutions / "flawed", tmp_path / "made")
    (flawed / "expected.toml").unlink()
    assert _files(made) == _files(flawed)


def test_flask_notes_patches_apply_to_the_reference(tmp_path):
    """Every flask-notes solution made of a flaw.patch applies to reference and changes it; none carries the patch."""
    reference = _files(FLASK_NOTES / "solutions" / "reference")
    reference.pop("expected.toml")
    patched = [s for s in sorted((FLASK_NOTES / "solutions").iterdir()) if (s / "flaw.patch").is_file()]
    assert len(patched) == 11
    for solution in patched:
        made = _files(make_solution(solution, tmp_path / solution.name))
        assert made != reference and not {"expected.toml", "flaw.patch"} & set(made), solution.name


def test_stale_patch_says_which_solution_hunk_and_what_to_do(notes_copy):
    """A reference that moved on under a patch gives the solution, the file, the hunk and the way to regenerate it."""
    api = notes_copy / "solutions" / "reference" / "notes_app" / "api.py"
    api.write_text(api.read_text().replace("# One atomic statement:", "# A single statement:"))
    with pytest.raises(PatchError) as raised:
        make_solution(notes_copy / "solutions" / "lost-likes", notes_copy / "made")
    message = str(raised.value)
    assert "solutions/lost-likes/flaw.patch: no longer applies to reference" in message
    assert "notes_app/api.py: hunk #2 of 2 (@@ -189,15 +189,7 @@ def delete_note(note_id: int):) does not match" in message
    assert "Regenerate flaw.patch against reference" in message and "git apply --reject" in message
    assert [p for p in validate_assignment(notes_copy) if "lost-likes" in p] == [message]
    assert validate_assignment(notes_copy, apply_patches=False) == []  # left to the check's matrix


def test_stale_patch_is_a_check_failure_and_the_others_still_run(notes_copy, monkeypatch, tmp_path):
    """check_assignment reports a stale patch as that solution's failure and grades every other solution,
    without re-runs for diagnosis."""
    api = notes_copy / "solutions" / "reference" / "notes_app" / "api.py"
    api.write_text(api.read_text().replace("# One atomic statement:", "# A single statement:"))

    def fake_grade(request: SubmissionRequest, settings: Settings) -> GradeReport:
        assert settings.sandbox.diagnosis_reruns == 0, "the check compares first outcomes: no re-runs for diagnosis"
        failing = load_expectation(notes_copy / "solutions" / Path(request.source).name).must_fail
        return _report({test_id: TestOutcome.failed for test_id in failing})

    monkeypatch.setattr(check_module, "grade_submission", fake_grade)
    settings = Settings(data_dir=tmp_path / "var", reports_dir=tmp_path / "reports")
    result = check_assignment(load_assignment_folder(notes_copy), settings, jobs=2)
    failed = [c for c in result.solutions if not c.ok]
    assert [c.name for c in failed] == ["lost-likes"] and failed[0].patch_failed
    assert len(result.solutions) == 13
    assert any(line.startswith("lost-likes: not graded: ") and "hunk #2 of 2" in line for line in surprises(result))


@pytest.mark.parametrize("name", ["a/../outside.py", "/etc/cron.d/x"])
def test_validation_refuses_a_patch_that_leaves_the_root(notes_copy, name):
    """A patch naming '..' or an absolute path is refused before git reads it, and writes nothing."""
    patch = notes_copy / "solutions" / "api-403" / "flaw.patch"
    patch.write_text(f"--- /dev/null\n+++ {name}\n@@ -0,0 +1 @@\n+pwned\n")
    for apply_patches in (True, False):
        problems = [p for p in validate_assignment(notes_copy, apply_patches) if "api-403" in p]
        assert len(problems) == 1 and f"{name!r} leaves the solution root" in problems[0]
    assert not (notes_copy / "solutions" / "outside.py").exists()


def test_validation_of_solution_folders(notes_copy):
    """A folder with both a patch and files, an empty one and a patch on a missing base are each named."""
    solutions = notes_copy / "solutions"
    (solutions / "api-403" / "wsgi.py").write_text("app = None\n")
    (solutions / "empty").mkdir()
    (solutions / "empty" / "expected.toml").write_text('flaw = "none"\n')
    expected = solutions / "lost-likes" / "expected.toml"
    expected.write_text(expected.read_text().replace('base = "reference"', 'base = "nowhere"'))
    problems = "\n".join(validate_assignment(notes_copy))
    assert "api-403: both a flaw.patch and files (wsgi.py)" in problems
    assert "empty: empty: add the solution's files, or a flaw.patch" in problems
    assert "lost-likes/expected.toml: base: 'nowhere' is not a whole-tree solution" in problems


def test_whole_copy_solution_becomes_a_repository(tmp_path):
    """A whole-tree solution (single-module) is copied as it is, without expected.toml, and committed."""
    solution = FLASK_NOTES / "solutions" / "single-module"
    repo = _as_repository(solution, tmp_path)
    tracked = subprocess.run(["git", "ls-files"], cwd=repo, capture_output=True, text=True, check=True).stdout.split()
    assert "notes.py" in tracked and "expected.toml" not in tracked
    assert {k: v for k, v in _files(solution).items() if k != "expected.toml"} == {
        k: v for k, v in _files(repo).items() if not k.startswith(".git/")
    }
