"""Pods with services on a real engine: PostgreSQL, Redis and Nginx beside the app in each lane's namespace, a fresh
database and broker per app instance, the grader's own SQL through its forward, two lanes that never see each
other's database or broker, and nothing left once the job is removed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import docker
import psycopg
import pytest

from grader.assignments.model import Assignment, load_assignment
from grader.errors import BootFailed
from grader.models import Pod, SubmissionRequest
from grader.pipeline import new_submission_id
from grader.sandbox.docker import DockerSandbox, remove_submission_resources
from grader.sandbox.pod import restart_app, start_lane, start_pod, wait_until_ready
from grader.sandbox.services import PG_PORT
from grader.sandbox.transport import BASE_URL, unix_session
from grader.settings import Settings
from grader.stages.build import build_image
from grader.stages.intake import fetch_snapshot
from tests.integration.conftest import leftovers
from tests.pods import APP, REQUIREMENTS, write_services_assignment

pytestmark = [pytest.mark.docker, pytest.mark.slow]

@pytest.fixture
def setting_up(settings: Settings, short_tmp: Path) -> tuple[Settings, Assignment]:
    assignments = write_services_assignment(short_tmp)
    return settings.replace(assignments_dir=assignments), load_assignment(assignments, "svc")


@pytest.fixture
def first_pod(setting_up, engine: docker.DockerClient, git_repo, graded_ids: list[str]) -> Iterator[tuple[Pod, DockerSandbox]]:
    settings, assignment = setting_up
    job = new_submission_id()
    graded_ids.append(job)
    repo = git_repo(files={"wsgi.py": APP, "requirements.txt": REQUIREMENTS})
    sandbox = DockerSandbox(engine, settings)
    try:
        snapshot = fetch_snapshot(SubmissionRequest(id=job, source=str(repo), assignment="svc"), settings)
        image = build_image(snapshot, settings, sandbox)
        yield start_pod(image, assignment, settings, sandbox), sandbox
    finally:
        remove_submission_resources(engine, job)


def _facts(pod: Pod, host: str = "app.sandbox") -> dict:
    response = unix_session(pod.socket_path).get(f"{BASE_URL}/", headers={"Host": host}, timeout=10)
    assert response.status_code == 200, response.text
    return json.loads(response.text)


def _superuser(pod: Pod) -> psycopg.Connection:
    assert pod.database_socket_dir is not None and pod.database is not None
    return psycopg.connect(host=str(pod.database_socket_dir), port=PG_PORT, user="postgres",
                           password=pod.superuser_password, dbname=pod.database.name, connect_timeout=10)


def test_a_pod_with_services_serves_through_nginx_on_its_own_database_and_broker(first_pod, setting_up, engine, graded_ids):
    pod, sandbox = first_pod
    settings, assignment = setting_up
    assert set(pod.services_ready_s) == {"postgresql", "redis", "nginx"}
    facts = _facts(pod, host="j-3f9a1c.jobs.test")
    assert pod.database is not None
    assert (facts["database"], facts["user"], facts["hits"]) == (pod.database.name, pod.database.role, 1)
    assert (facts["proto"], facts["forwarded_host"], facts["host"]) == ("https", "j-3f9a1c.jobs.test", "127.0.0.1:8000")
    with _superuser(pod) as conn:
        assert conn.execute("SELECT current_user, current_database()").fetchone() == ("postgres", pod.database.name)

    fresh = restart_app(pod, sandbox, settings, fresh_db=True, setup=False)
    assert fresh.database is not None and fresh.database.name != pod.database.name
    facts = _facts(fresh)
    assert (facts["database"], facts["hits"]) == (fresh.database.name, 1), "a new database and an emptied Redis"
    with _superuser(fresh) as conn:
        names = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        roles = {row[0] for row in conn.execute("SELECT rolname FROM pg_roles")}
    assert fresh.database.name in names and pod.database.name not in names and pod.database.role not in roles

    second = start_lane(fresh, assignment, settings, sandbox, lane=1)
    wait_until_ready(second, sandbox, settings)
    assert second.services_container != fresh.services_container
    assert second.relay_container != fresh.relay_container
    assert _facts(second)["hits"] == 1 and _facts(fresh)["hits"] == 2, "each lane its own Redis"
    with _superuser(second) as conn:
        names = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
    assert second.database is not None and second.database.name in names and fresh.database.name not in names

    remove_submission_resources(engine, pod.submission_id)
    assert leftovers(engine, [pod.submission_id]) == []


def test_gunicorn_not_answering_behind_nginx_is_said_so(setting_up, engine, git_repo, graded_ids):
    """Nginx answers 502 while nothing listens on the app's port: the boot fails with that, not as a success."""
    settings, assignment = setting_up
    job = new_submission_id()
    graded_ids.append(job)
    repo = git_repo(files={"wsgi.py": "import time\napp = None\ntime.sleep(3600)\n", "requirements.txt": REQUIREMENTS})
    sandbox = DockerSandbox(engine, settings.replace(boot_timeout_s=8))
    try:
        snapshot = fetch_snapshot(SubmissionRequest(id=job, source=str(repo), assignment="svc"), settings)
        image = build_image(snapshot, settings, sandbox)
        with pytest.raises(BootFailed, match="Gunicorn not answering behind Nginx"):
            start_pod(image, assignment, settings.replace(boot_timeout_s=8), sandbox)
    finally:
        remove_submission_resources(engine, job)
