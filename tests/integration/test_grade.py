"""The whole pipeline against the real engine, with real git clones of local repositories."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from grader.models import Status
from grader.settings import PROJECT_ROOT
from tests.conftest import REFERENCE
from tests.integration.conftest import BOOT_FAILS

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ASSIGNMENTS = PROJECT_ROOT / "assignments"


def test_reference_solution_gets_full_marks(grade, git_repo, settings):
    """The bundled reference solution scores max_score, and its report is written as JSON and HTML."""
    report = grade(str(git_repo(REFERENCE)))
    failures = [(t.id, t.message) for c in report.categories for t in c.tests if t.outcome.value != "passed"]
    assert report.status is Status.graded, report.reason
    assert failures == []
    assert report.score == report.max_score == 100
    assert {c.id for c in report.categories} == {"auth", "access_split", "migrations", "concurrency"}
    folder = settings.paths.reports_dir / report.id
    assert json.loads((folder / "report.json").read_text())["score"] == 100
    assert "flask-notes" in (folder / "report.html").read_text()
    assert report.provenance.commit and report.provenance.image_id and report.provenance.requirements_sha256
    app_output = report.logs["app output"]
    assert all(f"--- lane {lane} ---" in app_output for lane in ("main", "cli", "concurrency")), app_output[:400]
    assert not (settings.paths.sockets_dir / report.id).exists()


def test_lanes_in_turn_grade_the_same(grade, git_repo):
    """With `parallel_lanes` off the lanes run one after the other, with the same full marks."""
    report = grade(str(git_repo(REFERENCE)), parallel_lanes=False)
    assert report.status is Status.graded, report.reason
    assert report.score == report.max_score, [(t.id, t.message) for c in report.categories for t in c.tests if t.message]
    assert "--- lane cli ---" in report.logs["app output"]


_NEEDS_TABLES_TO_SERVE = '''"""Serving refuses to start on an unmigrated database; the Flask CLI imports it fine."""

import os
import sqlite3
import sys

from notes_app import create_app

if "gunicorn" in sys.argv[0]:
    path = os.environ["DATABASE_URL"].removeprefix("sqlite:///")
    if not sqlite3.connect(path).execute("SELECT 1 FROM sqlite_master WHERE name = 'users'").fetchone():
        raise SystemExit("refusing to serve: the users table is missing")

app = create_app()
'''


_FAILS_ON_FOUR_WORKERS = '''"""Serves on one worker; refuses to start under four (the concurrency category's app)."""

import sys

from notes_app import create_app

if "gunicorn" in sys.argv[0] and "4" in sys.argv[sys.argv.index("--workers") + 1:][:1]:
    raise SystemExit("refusing to serve on four workers")

app = create_app()
'''


def _concurrency_in_the_main_lane(folder: Path) -> Path:
    """A copy of the assignments folder where flask-notes runs concurrency after the functional suites, in the
    main lane: its four-worker app is then a spare pod, booted in the background from the lane's start."""
    shutil.copytree(ASSIGNMENTS / "flask-notes", folder / "flask-notes", ignore=shutil.ignore_patterns("solutions"))
    toml = folder / "flask-notes" / "assignment.toml"
    text = toml.read_text()
    assert 'lane = "concurrency"\n' in text
    toml.write_text(text.replace('lane = "concurrency"\n', ""))
    return folder


@pytest.mark.parametrize("concurrency", ["own lane", "spare pod in the main lane"])
def test_four_worker_boot_failure_costs_only_its_category(grade, git_repo, short_tmp, concurrency):
    """The four-worker app (booted at its lane's start, or as a spare pod in the background) fails: every
    concurrency test errors with the boot failure (raised at once after the first), the other categories keep
    full marks."""
    overrides = {"boot_timeout_s": 10}
    if concurrency != "own lane":
        overrides["assignments_dir"] = _concurrency_in_the_main_lane(short_tmp / "assignments")
    report = grade(str(git_repo(REFERENCE, files={"wsgi.py": _FAILS_ON_FOUR_WORKERS})), **overrides)
    assert report.status is Status.graded, report.reason
    scores = {c.id: c.score for c in report.categories}
    assert scores == {"auth": 25, "access_split": 25, "migrations": 25, "concurrency": 0}, scores
    concurrency = next(c for c in report.categories if c.id == "concurrency")
    assert all("HTTP" in t.message and "its output ends" in t.message for t in concurrency.tests), concurrency.tests[0]
    # Not booted again for each test: the later tests together take less than one boot attempt (10 s).
    assert len({t.message for t in concurrency.tests}) == 1
    assert sum(t.duration_s for t in concurrency.tests[1:]) < 10, [t.duration_s for t in concurrency.tests]


def test_boot_failure_inside_a_lane_costs_only_the_test_that_needs_it(grade, git_repo):
    """An app that cannot serve an unmigrated database fails the one migrations test that serves it so,
    at once; the other lane and the other migrations tests are unaffected."""
    report = grade(str(git_repo(REFERENCE, files={"wsgi.py": _NEEDS_TABLES_TO_SERVE})), boot_timeout_s=20)
    assert report.status is Status.graded, report.reason
    failed = {t.id: t for c in report.categories for t in c.tests if t.outcome.value != "passed"}
    assert set(failed) == {"test_migrations.py::test_app_does_not_create_tables_at_start"}, sorted(failed)
    message = failed["test_migrations.py::test_app_does_not_create_tables_at_start"].message
    assert "did not answer HTTP" in message or "before answering HTTP" in message, message
    assert "its output ends" in message, message
    assert report.score == pytest.approx(100 - 25 / 8, abs=0.01)


def test_missing_requirements_is_build_failed(grade, git_repo):
    """A repository without requirements.txt is build_failed with a reason that says so."""
    report = grade(str(git_repo(files={"wsgi.py": "app = None\n"})))
    assert report.status is Status.build_failed
    assert "requirements.txt" in report.reason
    assert report.score == 0


def test_failing_install_is_build_failed_with_log_tail(grade, git_repo):
    """An install that fails is build_failed; the reason says what uv said and the report keeps its output."""
    name = f"no-such-package-{uuid.uuid4().hex[:8]}"
    report = grade(str(git_repo(files={"requirements.txt": f"{name}==1.0\n", "wsgi.py": "app = None\n"})))
    assert report.status is Status.build_failed
    assert "uv exited" in report.reason
    assert f"{name} was not found in the package registry" in report.reason
    assert name in report.logs.get("build output", "")


def test_app_exiting_at_start_is_boot_failed_with_stderr(grade, git_repo):
    """An app that exits at import is boot_failed, with what it printed to stderr in the report."""
    report = grade(str(git_repo(files=BOOT_FAILS)), boot_timeout_s=20)
    assert report.status is Status.boot_failed
    assert "before answering HTTP" in report.reason
    assert "boom: DATABASE_URL handling crashed" in report.logs.get("output", "")


def test_second_grade_of_same_requirements_skips_install(grade, git_repo):
    """Two submissions with the same requirements.txt install once: the second reuses the cached layer."""
    marker = f"cache-test-{uuid.uuid4().hex}==1.0; python_version < '3'\n"  # unique after normalizing, never installed
    requirements = (REFERENCE / "requirements.txt").read_text() + marker
    first = grade(str(git_repo(files={"requirements.txt": requirements, **BOOT_FAILS_WITHOUT_REQS})), boot_timeout_s=10)
    second = grade(str(git_repo(files={"requirements.txt": requirements, **BOOT_FAILS_WITHOUT_REQS})), boot_timeout_s=10)
    assert first.provenance.deps_cached is False
    assert second.provenance.deps_cached is True
    assert first.provenance.requirements_sha256 == second.provenance.requirements_sha256
    assert second.timings.build_s < first.timings.build_s


BOOT_FAILS_WITHOUT_REQS = {k: v for k, v in BOOT_FAILS.items() if k != "requirements.txt"}


def test_cli_rejects_ext_url_with_exit_code_2(settings):
    """`grader grade 'ext::…'` exits 2 and writes a rejected report."""
    result = subprocess.run(
        [sys.executable, "-m", "grader", "grade", "ext::sh -c id", "--assignment", "flask-notes",
         "--out", str(settings.paths.reports_dir), "--json"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "rejected"
    assert "'ext' transport is not allowed" in report["reason"]


def test_cli_without_engine_exits_3_and_says_how(settings, git_repo):
    """An unreachable engine is infra_error, exit 3, with a hint on how to start it."""
    result = subprocess.run(
        [sys.executable, "-m", "grader", "grade", str(git_repo(REFERENCE)), "--assignment", "flask-notes",
         "--out", str(settings.paths.reports_dir), "--json"],
        capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "GRADER_DOCKER_HOST": "unix:///nonexistent/docker.sock",
             "GRADER_DATA_DIR": str(settings.paths.data_dir)},
    )
    assert result.returncode == 3, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "infra_error"
    assert "dockerd" in report["reason"]
