"""The whole pipeline against the real engine, with real git clones of local repositories."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest

from grader.models import Status
from tests.conftest import REFERENCE
from tests.integration.conftest import BOOT_FAILS

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_reference_solution_gets_full_marks(grade, git_repo, settings):
    """The bundled reference solution scores max_score, and its report is written as JSON and HTML."""
    report = grade(str(git_repo(REFERENCE)))
    failures = [(t.id, t.message) for c in report.categories for t in c.tests if t.outcome.value != "passed"]
    assert report.status is Status.graded, report.reason
    assert failures == []
    assert report.score == report.max_score == 100
    assert {c.id for c in report.categories} == {"auth", "access_split", "migrations", "concurrency"}
    folder = settings.reports_dir / report.id
    assert json.loads((folder / "report.json").read_text())["score"] == 100
    assert "flask-notes" in (folder / "report.html").read_text()
    assert report.provenance.commit and report.provenance.image_id and report.provenance.requirements_sha256


def test_missing_requirements_is_build_failed(grade, git_repo):
    """A repository without requirements.txt is build_failed with a reason that says so."""
    report = grade(str(git_repo(files={"wsgi.py": "app = None\n"})))
    assert report.status is Status.build_failed
    assert "requirements.txt" in report.reason
    assert report.score == 0


def test_failing_install_is_build_failed_with_log_tail(grade, git_repo):
    """An install that fails is build_failed; the reason says what uv said and the report keeps its output."""
    name = f"no-such-package-{uuid.uuid4().hex[:8]}"
    report = grade(str(git_repo(files={"requirements.txt": f"{name}==1.0\n"})))
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
    marker = f"# cache-test {uuid.uuid4().hex}\n"
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
         "--out", str(settings.reports_dir), "--json"],
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
         "--out", str(settings.reports_dir), "--json"],
        capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "GRADER_DOCKER_HOST": "unix:///nonexistent/docker.sock",
             "GRADER_DATA_DIR": str(settings.data_dir)},
    )
    assert result.returncode == 3, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "infra_error"
    assert "dockerd" in report["reason"]
