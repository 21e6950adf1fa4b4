"""Dependency layouts real projects use, graded for real: the flask-notes reference with its pins split behind
`-r`/`-c`, moved into pyproject.toml, or locked in uv.lock, gets full marks; an unbuildable pin names the package."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from grader.models import GradeReport, Status
from tests.conftest import REFERENCE

pytestmark = [pytest.mark.docker, pytest.mark.slow]

LAYOUTS = Path(__file__).resolve().parent / "layouts"  # pyproject.toml and the uv.lock `uv lock` made from it
PINS = [line.strip() for line in (REFERENCE / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")]


def _reference_without_requirements(tmp_path: Path, files: dict[str, str]) -> Path:
    tree = tmp_path / "tree"
    shutil.copytree(REFERENCE, tree, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.db"))
    (tree / "requirements.txt").unlink()
    for name, text in files.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text(text)
    return tree


def _full_marks(report: GradeReport, started: float) -> None:
    failures = [(t.id, t.message[:200]) for c in report.categories for t in c.tests if t.outcome.value != "passed"]
    print(f"{report.status.value} {report.score}/{report.max_score} in {time.monotonic() - started:.1f} s "
          f"(build {report.timings.build_s:.1f} s, deps cached: {report.provenance.deps_cached})")
    assert report.status is Status.graded, report.reason
    assert failures == []
    assert report.score == report.max_score == 100


def test_split_requirements_behind_r_and_c_get_full_marks(grade, git_repo, tmp_path):
    """requirements.txt is `-r requirements/prod.txt`, which includes `base.txt` and `-c constraints.txt`."""
    direct, transitive = PINS[:6], PINS[6:]
    tree = _reference_without_requirements(tmp_path, {
        "requirements.txt": "-r requirements/prod.txt\n",
        "requirements/prod.txt": "-r base.txt\n-c constraints.txt\n" + "\n".join(transitive) + "\n",
        "requirements/base.txt": "# the app's own dependencies\n" + "\n".join(direct) + "\n",
        "requirements/constraints.txt": "Werkzeug==3.1.9\nclick==8.5.1\n",
    })
    started = time.monotonic()
    report = grade(str(git_repo(tree)))
    _full_marks(report, started)
    assert report.provenance.dependency_format == "requirements"
    assert report.provenance.dependency_files == [
        "requirements.txt", "requirements/prod.txt", "requirements/base.txt", "requirements/constraints.txt",
    ], report.provenance
    assert report.provenance.dependencies_sha256


def test_an_include_cycle_is_build_failed_naming_the_chain_before_any_build(grade, git_repo, tmp_path):
    """requirements.txt -> a.txt -> requirements.txt: refused in the policy, before any container starts."""
    tree = _reference_without_requirements(
        tmp_path, {"requirements.txt": "-r a.txt\n", "a.txt": "Flask==3.1.3\n-r requirements.txt\n"},
    )
    report = grade(str(git_repo(tree)))
    print(f"{report.status.value} in {report.timings.total_s:.2f} s: {report.reason}")
    assert report.status is Status.build_failed, report.reason
    assert "a.txt line 2" in report.reason and "cycle" in report.reason, report.reason
    assert report.provenance.image_id is None, "nothing was built"


def test_pyproject_only_gets_full_marks(grade, git_repo, tmp_path):
    """No requirements.txt: the pins are `[project] dependencies`; the project itself is not built."""
    tree = _reference_without_requirements(tmp_path, {"pyproject.toml": (LAYOUTS / "pyproject.toml").read_text()})
    started = time.monotonic()
    _full_marks(grade(str(git_repo(tree))), started)


def test_uv_lock_gets_full_marks(grade, git_repo, tmp_path):
    """pyproject.toml and the uv.lock `uv lock` made of it: the lock wins, its exact versions are installed."""
    tree = _reference_without_requirements(tmp_path, {
        "pyproject.toml": (LAYOUTS / "pyproject.toml").read_text(), "uv.lock": (LAYOUTS / "uv.lock").read_text(),
    })
    started = time.monotonic()
    _full_marks(grade(str(git_repo(tree))), started)


def test_an_unbuildable_pin_is_build_failed_naming_the_package(grade, git_repo):
    """A version that does not exist on the index: build_failed, the reason names the package and version."""
    started = time.monotonic()
    pins = (REFERENCE / "requirements.txt").read_text().replace("Flask==3.1.3", "Flask==99.0.0")
    report = grade(str(git_repo(REFERENCE, files={"requirements.txt": pins})))
    print(f"{report.status.value} in {time.monotonic() - started:.1f} s: {report.reason}")
    assert report.status is Status.build_failed, report.reason
    assert "flask==99.0.0" in report.reason.lower() and "uv exited" in report.reason, report.reason
    assert "build output" in report.logs
