"""The candidate's own tests against the real engine: the reference's suite passes in the sandbox with real
coverage, a suite with failures names them, and tests without pytest in the image say so."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from grader.assignments.model import Assignment, load_assignment
from grader.models import Snapshot
from grader.pipeline import new_submission_id
from grader.sandbox import ContainerSpec
from grader.sandbox.docker import DockerSandbox, remove_submission_resources
from grader.settings import PROJECT_ROOT, Settings
from grader.stages.build import build_image
from grader.stages.candidate_tests import run_candidate_tests
from grader.stages.requirements import TEST_TOOLS
from tests.conftest import REFERENCE

pytestmark = [pytest.mark.docker, pytest.mark.slow]

# sha256 of itsdangerous-2.2.0-py3-none-any.whl on PyPI (as in test_build.py)
ITSDANGEROUS_HASH = "sha256:c6242fc49e35958c8b15141343aa660db5fc54d4f13a1db01a3f5891b98700ef"

BROKEN = '''
import pytest


def test_arithmetic():
    assert 1 + 1 == 3


@pytest.fixture
def database():
    raise RuntimeError("no database here")


def test_needs_a_database(database):
    pass


class TestNotes:
    @pytest.mark.parametrize("count", [1, 2])
    def test_count(self, count):
        assert count == 1
'''


class WatchingSandbox(DockerSandbox):
    """DockerSandbox that keeps what the engine says of each container it starts, while it runs."""

    def __init__(self, client: docker.DockerClient, settings: Settings) -> None:
        super().__init__(client, settings)
        self.inspected: list[dict[str, Any]] = []

    def start(self, spec: ContainerSpec) -> str:
        container = super().start(spec)
        self.inspected.append(self.client.api.inspect_container(container))
        return container


@pytest.fixture(scope="module")
def notes() -> Assignment:
    return load_assignment(PROJECT_ROOT / "assignments", "flask-notes")


@pytest.fixture
def sandbox(engine: docker.DockerClient, settings: Settings) -> WatchingSandbox:
    return WatchingSandbox(engine, settings)


@pytest.fixture
def built(
    settings: Settings, sandbox: WatchingSandbox, engine: docker.DockerClient, graded_ids: list[str], tmp_path: Path,
) -> Iterator[Callable[..., tuple[Any, Path]]]:
    """Build a tree (the reference, or only `files`) into a submission image; (image, tree). Cleaned up after."""

    def run(files: dict[str, str], reference: bool = True) -> tuple[Any, Path]:
        job = new_submission_id()
        graded_ids.append(job)
        tree = tmp_path / job
        if reference:
            shutil.copytree(REFERENCE, tree, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.db", "expected.toml"))
        for name, text in files.items():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            (tree / name).write_text(text)
        snapshot = Snapshot(submission_id=job, url=str(tree), ref=None, commit="0" * 40, path=tree)
        return build_image(snapshot, settings, sandbox), tree

    yield run
    for job in graded_ids:
        remove_submission_resources(engine, job)


def test_the_reference_suite_passes_in_the_sandbox_with_real_coverage(built, sandbox, notes, settings):
    """8 passed, none failed, more than half of notes_app covered, within the budget; the container had the app's
    hardening (no network, read-only root, the pids and memory limits, the app user) and the job's labels."""
    image, tree = built({})
    result = run_candidate_tests(image, notes, settings, sandbox, tree)
    print(f"reference: {result.model_dump(exclude={'output_tail'})}")
    assert result.ran and result.note == "", result.output_tail
    assert (result.passed, result.failed, result.errors) == (8, 0, 0), result.output_tail
    assert result.coverage_percent is not None and result.coverage_percent > 50
    assert result.duration_s < settings.timeouts.candidate_tests_s
    assert "8 passed" in result.output_tail
    (inspected,) = sandbox.inspected[-1:]
    host = inspected["HostConfig"]
    assert (host["NetworkMode"], host["ReadonlyRootfs"], host["PidsLimit"]) == ("none", True, settings.sandbox.pids)
    assert host["Memory"] == 512 * 1024 * 1024 and host["CapDrop"] == ["ALL"] and "/tmp" in host["Tmpfs"]
    assert inspected["Config"]["User"] == "10001:10001"
    labels = inspected["Config"]["Labels"]
    assert (labels["grader.job"], labels["grader.role"]) == (image.submission_id, "tests")
    assert sandbox.containers_of(image.submission_id, role="tests") == [], "the tests container was left"


def test_a_suite_with_failures_names_them(built, sandbox, notes, settings):
    image, tree = built({"tests/test_broken.py": BROKEN})
    result = run_candidate_tests(image, notes, settings, sandbox, tree)
    assert (result.passed, result.failed, result.errors) == (9, 2, 1), result.output_tail
    assert result.failing == [
        "tests/test_broken.py::test_arithmetic",
        "tests/test_broken.py::test_needs_a_database",
        "tests/test_broken.py::TestNotes::test_count[2]",
    ]
    assert "FAILED tests/test_broken.py::test_arithmetic" in result.output_tail
    assert result.coverage_percent is not None and result.coverage_percent > 50


def test_a_suite_that_cannot_import_is_a_result_with_its_errors(built, sandbox, notes, settings):
    image, tree = built({"tests/test_api.py": "import notes_app.nowhere\n\ndef test_x():\n    pass\n"})
    result = run_candidate_tests(image, notes, settings, sandbox, tree)
    assert result.ran and result.errors == 1 and "tests/test_api.py" in result.failing
    assert "No module named 'notes_app.nowhere'" in result.output_tail
    assert result.passed == 8  # the other modules still ran


def test_hashed_requirements_without_pytest_say_the_tests_could_not_run(built, sandbox, notes, settings):
    """With `--hash` lines the grader adds no tools, so the image has no pytest: ran=False, and why."""
    files = {"requirements.txt": f"itsdangerous==2.2.0 --hash={ITSDANGEROUS_HASH}\n", "wsgi.py": "app = None\n",
             "tests/test_a.py": "def test_a():\n    pass\n"}
    image, tree = built(files, reference=False)
    result = run_candidate_tests(image, notes, settings, sandbox, tree)
    assert not result.ran and "pytest is not installed" in result.note
    assert all(tool not in result.note for tool in TEST_TOOLS)
