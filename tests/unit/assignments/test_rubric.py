"""Weights of `[[tests]]`: how a category's points are shared, and what assignment.toml may say of its tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.assignments.model import AssignmentError, load_assignment, load_assignment_folder
from grader.assignments.rubric import TestSpec, matches, share_points
from grader.models import SuiteOutcomes, TestOutcome, TestResult
from grader.settings import PROJECT_ROOT
from grader.stages.score import score_outcomes

P, F, S = TestOutcome.passed, TestOutcome.failed, TestOutcome.skipped
REDIRECT = TestSpec(name="open redirect", match=["test_a.py::test_redirect"], points=10)


def test_an_id_matches_its_parametrized_variants_and_a_pattern_matches_by_fnmatch():
    assert matches("test_a.py::test_redirect", "test_a.py::test_redirect[absolute]")
    assert not matches("test_a.py::test_redirect", "test_a.py::test_redirect_other")
    assert matches("test_a.py::test_*_404", "test_a.py::test_get_404")
    assert not matches("test_a.py::test_redirect[absolute]", "test_a.py::test_redirect[backslash]")


def test_unweighted_tests_share_the_points_equally():
    shares = share_points(25, [("t::a", P), ("t::b", F), ("t::c", P), ("t::d", P)], [])
    assert shares.score == 18.75
    assert shares.by_test == {"t::a": 6.25, "t::b": 6.25, "t::c": 6.25, "t::d": 6.25}


def test_a_weighted_check_is_lost_once_whichever_of_its_tests_fail():
    variants = [f"test_a.py::test_redirect[{v}]" for v in ("absolute", "backslash", "protocol")]
    one = share_points(25, [(variants[0], F), (variants[1], P), (variants[2], P), ("test_a.py::test_form", P)], [REDIRECT])
    three = share_points(25, [(v, F) for v in variants] + [("test_a.py::test_form", P)], [REDIRECT])
    assert one.score == three.score == 15
    assert one.by_test[variants[0]] == 10 and one.by_test[variants[1]] == 0
    assert [three.by_test[v] for v in variants] == pytest.approx([10 / 3] * 3, abs=1e-4)
    assert share_points(25, [(v, P) for v in variants] + [("test_a.py::test_form", P)], [REDIRECT]).score == 25


def test_skipped_tests_count_for_nothing_and_the_rest_scales_to_the_category():
    shares = share_points(25, [("test_a.py::test_redirect", S), ("test_a.py::test_form", P), ("test_a.py::x", F)], [REDIRECT])
    assert shares.score == 12.5
    assert shares.by_test["test_a.py::test_redirect"] == 0


def test_scoring_gives_each_test_what_it_earned_or_cost():
    assignment = load_assignment(PROJECT_ROOT / "assignments", "flask-notes")
    ids = [
        "test_auth.py::test_password_not_stored_in_plaintext", "test_auth.py::test_logout_ends_the_session",
        "test_auth.py::test_register_rejects_short_password", "test_auth.py::test_me_returns_the_logged_in_user",
    ]
    results = [TestResult(id=i, title=i, category="auth", outcome=F if "plaintext" in i else P) for i in ids]
    auth = score_outcomes(SuiteOutcomes(results=results), assignment)[0]
    assert auth.score == 15  # the 10 of password storage lost; session cookies' 10 and the others' 5 earned
    assert [t.points for t in auth.tests] == [10, 10, 2.5, 2.5]


def _folder(tmp_path: Path, tests: str, brief: str = "Passwords are hashed.") -> Path:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_auth.py").write_text("def test_hash():\n    pass\n\ndef test_login():\n    pass\n")
    (tmp_path / "brief.md").write_text(f"# Brief\n\n{brief}\n")
    (tmp_path / "assignment.toml").write_text(
        'id = "t"\ntitle = "T"\nversion = "1"\n'
        '[[categories]]\nid = "auth"\ntitle = "Auth"\nweight = 25\nrubric = "Passwords are hashed."\n' + tests
    )
    return tmp_path


@pytest.mark.parametrize(
    ("tests", "problem"),
    [
        ('[[tests]]\nname = "x"\nmatch = ["test_auth.py::test_nothing"]\n', "matches no test function"),
        ('[[tests]]\nname = "x"\nmatch = ["test_other.py::test_hash"]\n', "not the hidden test file"),
        ('[[tests]]\nname = "x"\nmatch = ["test_auth.py::test_hash"]\npoints = 25\n', "leave a share"),
        ('[[tests]]\nname = "x"\nmatch = ["test_auth.py::test_hash"]\npoints = -1\n', "greater than 0"),
        ('[[tests]]\nname = "x"\nmatch = ["test_auth.py::test_hash"]\nrubric = "Not in the brief."\n', "not in brief.md"),
        ('[[tests]]\nname = "x"\nmatch = ["test_hash"]\n', "a test id or pattern"),
    ],
)
def test_what_assignment_toml_says_of_tests_is_checked(tmp_path, tests, problem):
    with pytest.raises(AssignmentError, match=problem):
        load_assignment_folder(_folder(tmp_path, tests))


def test_a_valid_entry_loads(tmp_path):
    folder = _folder(tmp_path, '[[tests]]\nname = "hash"\nmatch = ["test_auth.py::test_h*"]\npoints = 10\nseverity = "security"\n')
    spec = load_assignment_folder(folder).spec_of("test_auth.py::test_hash")
    assert spec is not None and spec.points == 10 and spec.severity.value == "security"


def test_flask_notes_weighs_each_security_check_at_least_40_percent_of_its_category():
    assignment = load_assignment(PROJECT_ROOT / "assignments", "flask-notes")
    weights = {c.id: c.weight for c in assignment.categories}
    security = [s for s in assignment.tests if s.severity is not None and s.severity.value == "security" and s.points]
    assert {s.name for s in security} == {"password storage", "session cookies", "open redirect", "shared sessions"}
    for spec in security:
        category = spec.file.removeprefix("test_").removesuffix(".py")
        assert spec.points / weights[category] >= 0.4, spec.name
