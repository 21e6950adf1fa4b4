"""The follow-up question bank: validated against the assignment, questions chosen by what the grade found."""

from __future__ import annotations

import shutil

import pytest

from grader.assignments.model import AssignmentError, load_assignment, load_assignment_folder
from grader.assignments.questions import MAX_CHOSEN, choose_follow_ups, load_bank
from grader.models import (
    CandidateTests,
    CategoryReport,
    CodeReview,
    Finding,
    Severity,
    TestOutcome,
    TestReport,
)
from grader.settings import PROJECT_ROOT


@pytest.fixture(scope="module")
def notes():
    return load_assignment(PROJECT_ROOT / "assignments", "flask-notes")


@pytest.fixture(scope="module")
def bank(notes):
    return load_bank(notes)


def _category(id: str, failed: list[str], passed: int = 3, rerun: TestOutcome | None = None) -> CategoryReport:
    tests = [TestReport(id=t, title=t, outcome=TestOutcome.failed, rerun=rerun, points=1) for t in failed]
    tests += [TestReport(id=f"test_{id}.py::test_ok_{i}", title="ok", outcome=TestOutcome.passed, points=1) for i in range(passed)]
    return CategoryReport(id=id, title=id, score=passed, max_score=passed + len(failed), tests=tests)


def test_a_lost_test_chooses_its_question_and_says_why(bank):
    categories = [_category("auth", ["test_auth.py::test_password_not_stored_in_plaintext"])]
    chosen = choose_follow_ups(bank, categories, None, CandidateTests(ran=True, passed=4))
    first = chosen[0]
    assert first.question.startswith("How does your app store passwords")
    assert first.because == ["test_auth.py::test_password_not_stored_in_plaintext"]
    assert first.strong_answer and not first.depth
    assert [f.depth for f in chosen].count(True) == 1  # one depth probe beside what the grade called for


def test_review_rules_and_facts_choose_questions_too(bank):
    review = CodeReview(findings=[
        Finding(rule="grader:no-app-factory", severity=Severity.maintainability, file="app.py", message="m"),
        Finding(rule="ruff:S608", severity=Severity.security, file="db.py", line=9, message="m"),
    ])
    chosen = choose_follow_ups(bank, [_category("auth", [])], review, CandidateTests(ran=False, note="none"))
    by_question = {f.question: f.because for f in chosen}
    structure = next(b for q, b in by_question.items() if q.startswith("How do you structure a Flask app"))
    assert structure == ["grader:no-app-factory", "candidate-tests:none"]
    assert any(b == ["ruff:S608"] for b in by_question.values())


def test_questions_with_more_reasons_come_first_and_they_are_capped(bank):
    failed = [
        "test_concurrency.py::test_concurrent_likes_are_all_counted", "test_concurrency.py::test_session_valid_on_every_worker",
        "test_concurrency.py::test_concurrent_registrations_of_one_name",
    ]
    categories = [
        _category("concurrency", failed, rerun=TestOutcome.passed),
        _category("access_split", ["test_access_split.py::test_login_refuses_open_redirect[backslash]"]),
        _category("migrations", ["test_migrations.py::test_db_check_reports_no_changes"]),
        _category("auth", ["test_auth.py::test_logout_ends_the_session"]),
    ]
    chosen = [f for f in choose_follow_ups(bank, categories, None, CandidateTests(ran=False)) if not f.depth]
    assert len(chosen) == MAX_CHOSEN
    assert chosen[0].because == [failed[0], "category:concurrency", "intermittent"]


def test_a_perfect_submission_still_gets_depth_questions(bank):
    chosen = choose_follow_ups(bank, [_category("auth", [])], CodeReview(), CandidateTests(ran=True, passed=8))
    assert len(chosen) == 3 and all(f.depth and f.because == ["depth"] for f in chosen)


def test_a_bank_naming_something_unknown_is_refused(notes, tmp_path):
    folder = tmp_path / "flask-notes"
    shutil.copytree(notes.folder, folder, ignore=shutil.ignore_patterns("solutions"))
    text = (folder / "questions.toml").read_text()
    (folder / "questions.toml").write_text(text.replace('"ruff:C901", ', '"test_auth.py::test_gone", ', 1))
    with pytest.raises(AssignmentError, match=r"question complexity: when: 'test_auth.py::test_gone' is not a hidden test"):
        load_bank(load_assignment_folder(folder))
    (folder / "questions.toml").write_text('[[question]]\nid = "x"\nquestion = "q?"\nstrong_answer = ["a"]\n')
    with pytest.raises(AssignmentError, match="names what calls for it"):
        load_bank(load_assignment_folder(folder))


def test_no_bank_means_no_questions(notes, tmp_path):
    folder = tmp_path / "flask-notes"
    shutil.copytree(notes.folder, folder, ignore=shutil.ignore_patterns("solutions", "questions.toml"))
    assert load_bank(load_assignment_folder(folder)) is None
    assert choose_follow_ups(None, [], None, None) == []


def test_the_question_about_the_flaw_that_cost_most_comes_first(bank):
    """per-process-secret: the session test (10 points) outranks the likes test (5) and its category."""
    def lost(test: str, points: float) -> TestReport:
        return TestReport(id=test, title=test, outcome=TestOutcome.failed, points=points)

    concurrency = CategoryReport(id="concurrency", title="c", score=10, max_score=25, tests=[
        lost("test_concurrency.py::test_session_valid_on_every_worker", 10),
        lost("test_concurrency.py::test_concurrent_likes_are_all_counted", 5),
    ])
    chosen = choose_follow_ups(bank, [concurrency], None, CandidateTests(ran=True, passed=1))
    assert chosen[0].question.startswith("Your app runs in four Gunicorn workers")
    assert chosen[1].question.startswith("Fifty requests like the same note")
