"""docker-compose.yml on one host (issue #17): built and brought up, a submission made through the API is graded by
the worker container on the host's engine, its report read through the API, and the stack taken down leaving no
container, volume or network behind. Debian's docker-compose 1.29, as README says."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import requests

from grader.settings import PROJECT_ROOT
from tests.integration.conftest import leftovers
from tests.loopback import free_port

pytestmark = [pytest.mark.docker, pytest.mark.slow]

REFERENCE = PROJECT_ROOT / "assignments" / "flask-notes" / "solutions" / "reference"
PROJECT_LABEL = "com.docker.compose.project"



class Stack:
    """One compose project, its host data folder and its web port."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.project = f"gradertest{os.urandom(3).hex()}"
        self.port = free_port()
        self.env = {
            **os.environ, "COMPOSE_PROJECT_NAME": self.project, "GRADER_HOST_DATA": str(data),
            "GRADER_WEB_PORT": str(self.port), "GRADER_ALLOW_LOCAL_SOURCES": "true",
        }

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        command = ["docker-compose", "-f", str(PROJECT_ROOT / "docker-compose.yml"), *args]
        return subprocess.run(command, env=self.env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout, check=False)

    def logs(self, service: str = "", tail: int = 80) -> str:
        return self.compose("logs", "--no-color", "--tail", str(tail), *([service] if service else []), timeout=60).stdout

    def ok(self, *args: str, timeout: float = 300) -> str:
        result = self.compose(*args, timeout=timeout)
        assert result.returncode == 0, f"docker-compose {' '.join(args)} exited {result.returncode}: {result.stderr[-3000:]}"
        return result.stdout

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def stack(engine: docker.DockerClient) -> Iterator[Stack]:
    assert shutil.which("docker-compose"), "docker-compose is not installed: `make setup` installs Debian's"
    stack = Stack(Path(tempfile.mkdtemp(prefix="gc-", dir="/tmp")))
    try:
        yield stack
    finally:
        logs = stack.logs()
        down = stack.compose("down", "--volumes", "--remove-orphans", timeout=180)
        shutil.rmtree(stack.data, ignore_errors=True)
        selector = {"label": f"{PROJECT_LABEL}={stack.project}"}
        left = [c.name for c in engine.containers.list(all=True, filters=selector)]
        left += [v.name for v in engine.volumes.list(filters=selector)]
        left += [n.name for n in engine.networks.list(filters=selector)]
        assert down.returncode == 0, f"docker-compose down: {down.stderr[-2000:]}"
        assert left == [], f"left behind by the compose stack: {left}; its last logs:\n{logs[-4000:]}"


def _wait_for_web(stack: Stack, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if requests.get(stack.url("/login"), timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise AssertionError(f"the web app never answered on 127.0.0.1:{stack.port}: {stack.logs('web')}")


def _repository(root: Path) -> Path:
    repo = root / "repos" / "reference"
    shutil.copytree(REFERENCE, repo, ignore=shutil.ignore_patterns("__pycache__", "expected.toml"))
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "reference"]):
        subprocess.run(["git", "-c", "user.name=ci", "-c", "user.email=ci@localhost", *args], cwd=repo, check=True)
    return repo


def test_compose_stack_grades_a_submission_made_through_the_api(stack: Stack, engine: docker.DockerClient) -> None:
    stack.ok("config", "--quiet")
    stack.ok("build", timeout=1200)
    stack.ok("up", "--detach", "--scale", "worker=2", timeout=300)
    _wait_for_web(stack)
    stack.ok("exec", "-T", "web", "grader", "users", "create", "ci@example.com", "--role", "admin", "--password", "ci-password-1")
    token = stack.ok("exec", "-T", "web", "grader", "users", "token", "ci@example.com", "--name", "ci").strip().splitlines()[-1]
    auth = {"Authorization": f"Bearer {token}"}

    repo = _repository(stack.data)
    posted = requests.post(stack.url("/api/submissions"), json={"assignment": "flask-notes", "repository": str(repo)},
                           headers=auth, timeout=10)
    assert posted.status_code == 202, posted.text
    submission = posted.json()["id"]

    deadline = time.monotonic() + 420
    status: dict = {}
    while time.monotonic() < deadline:
        status = requests.get(stack.url(f"/api/submissions/{submission}"), headers=auth, timeout=10).json()
        if status.get("final"):
            break
        time.sleep(2)
    assert status.get("final"), f"not graded within 420 s: {status}; the workers' logs: {stack.logs('worker')}"
    report = requests.get(stack.url(f"/api/submissions/{submission}/report"), headers=auth, timeout=10)
    assert report.status_code == 200, report.text
    body = report.json()
    assert (body["status"], body["score"], body["max_score"]) == ("graded", 100, 100), body.get("reason")
    assert leftovers(engine, [submission]) == []
