"""Integration fixtures: the real engine, real git repositories, and a check that nothing is left behind."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from grader.models import SubmissionRequest
from grader.pipeline import grade_submission, new_submission_id
from grader.sandbox.docker import SUBMISSION_LABEL, DockerSandbox, connect
from grader.settings import Settings
from grader.stages.report import write_report

BOOT_FAILS = {
    "requirements.txt": "gunicorn==23.0.0\n",
    "wsgi.py": (
        'import sys\nprint("boom: DATABASE_URL handling crashed at import", file=sys.stderr)\nraise SystemExit(3)\n'
        "app = None\n"  # never reached; the preflight only looks for the name
    ),
}


@pytest.fixture(scope="session")
def engine() -> docker.DockerClient:
    """The Docker engine; the suite fails (it does not skip) when none runs: `make test` starts one."""
    return connect(Settings())


def leftovers(engine: docker.DockerClient, job_ids: list[str]) -> list[str]:
    """Containers, volumes, networks and images still labelled with one of the jobs."""
    found: list[str] = []
    for job_id in job_ids:
        selector = {"label": f"{SUBMISSION_LABEL}={job_id}"}
        found += [f"container {c.name}" for c in engine.containers.list(all=True, filters=selector)]
        found += [f"volume {v.name}" for v in engine.volumes.list(filters=selector)]
        found += [f"network {n.name}" for n in engine.networks.list(filters=selector)]
        found += [f"image {i.short_id}" for i in engine.images.list(filters=selector)]
    return found


@pytest.fixture
def graded_ids() -> list[str]:
    """Ids of the jobs a test graded, for the leftover check."""
    return []


@pytest.fixture(autouse=True)
def nothing_left_behind(engine: docker.DockerClient, graded_ids: list[str]) -> Iterator[None]:
    """After every test, no container, volume, network or image of its jobs is left."""
    yield
    assert leftovers(engine, graded_ids) == []


@pytest.fixture
def grade(settings: Settings, engine: docker.DockerClient, graded_ids: list[str]):
    """Grade a source in-process with the test's settings."""

    def run(source: str, assignment: str = "flask-notes", ref: str | None = None, **overrides: object):
        request = SubmissionRequest(id=new_submission_id(), source=source, ref=ref, assignment=assignment)
        graded_ids.append(request.id)
        used = settings.replace(**overrides)
        report = grade_submission(request, used, sandbox=DockerSandbox(engine, used))
        write_report(report, used.paths.reports_dir)  # as `grader grade` does
        return report

    return run
