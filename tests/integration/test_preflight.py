"""Preflight against the real engine and real git clones: a layout refusal costs seconds, a warning still grades."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from grader.assignments.check import make_solution
from grader.models import Status
from grader.settings import PROJECT_ROOT
from tests.conftest import REFERENCE

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SOLUTIONS = PROJECT_ROOT / "assignments" / "flask-notes" / "solutions"


def _reference_as_microblog(short_tmp: Path) -> Path:
    """The reference with its entry module renamed, as in Miguel Grinberg's microblog: `microblog.py`, no wsgi.py."""
    tree = short_tmp / "microblog-src"
    shutil.copytree(REFERENCE, tree, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.db", "expected.toml"))
    (tree / "wsgi.py").rename(tree / "microblog.py")
    return tree


def test_reference_without_wsgi_is_rejected_before_the_build(grade, git_repo, short_tmp, capsys):
    """wsgi.py renamed to microblog.py: rejected in well under a build's time, naming wsgi.py and microblog.py."""
    started = time.monotonic()
    report = grade(str(git_repo(_reference_as_microblog(short_tmp))))
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(f"\npreflight refusal: {elapsed:.2f} s wall (preflight_s {report.timings.preflight_s:.3f} s, "
              f"intake_s {report.timings.intake_s:.3f} s): {report.reason}")
    assert report.status is Status.rejected and report.score == 0
    assert report.reason.startswith("`wsgi.py` is missing at the repository root: the brief says")
    assert "Found instead: `microblog.py` (defines `app`; imports `create_app`)" in report.reason
    assert "`notes_app/__init__.py` (defines `create_app`)" in report.reason
    assert "from notes_app import create_app" in report.reason
    assert report.timings.build_s == 0 and report.provenance.image_id is None
    assert elapsed < 10, "a layout refusal takes seconds, not a build"


def test_no_migrations_folder_is_a_warning_and_the_rest_is_graded(grade, git_repo, short_tmp, settings):
    """Without migrations/ (tables made by create_all): a warning at the top, migrations fail, the others score."""
    tree = make_solution(SOLUTIONS / "no-migrations", short_tmp / "no-migrations-src")
    assert not (tree / "migrations").exists()
    report = grade(str(git_repo(tree)))
    assert report.status is Status.graded, report.reason
    assert len(report.warnings) == 1 and report.warnings[0].startswith("`migrations/` is missing at the repository root")
    assert "the Database migrations (`migrations`) category will fail" in report.warnings[0]
    scores = {c.id: (c.score, c.max_score) for c in report.categories}
    assert scores["migrations"][0] < scores["migrations"][1]
    assert all(scores[c] == (25, 25) for c in ("auth", "access_split", "concurrency")), scores
    html = (settings.paths.reports_dir / report.id / "report.html").read_text()
    assert html.index("Warnings") < html.index("Why this score") < html.index("All hidden tests")
