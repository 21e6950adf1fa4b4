"""Integration fixtures: the real engine, real git repositories, a private redis-server, a check that nothing is left behind."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import docker
import pytest
import redis
from moto.server import ThreadedMotoServer
from redis.backoff import NoBackoff
from redis.retry import Retry

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


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    """A real S3-compatible server (moto's server mode) on a free loopback port, for one test module."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3_storage_fields(url: str, bucket: str, prefix: str = "") -> dict[str, str]:
    """Create `bucket` on the server at `url`; the `storage` settings group naming it (moto takes any key)."""
    boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=bucket)
    return {"backend": "s3", "s3_bucket": bucket, "s3_prefix": prefix, "s3_endpoint_url": url, "s3_region": "us-east-1",
            "s3_access_key_id": "testing", "s3_secret_access_key": "testing"}


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


class RedisServer:
    """A private redis-server on a unix socket with append-only persistence, as a test starts it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.socket = folder / "redis.sock"
        self.url = f"unix://{self.socket}"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["redis-server", "--port", "0", "--unixsocket", str(self.socket), "--dir", str(self.folder),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "yes",
             "--pidfile", str(self.folder / "redis.pid"), "--logfile", str(self.folder / "redis.log")],
            check=True, timeout=30,
        )
        wait_for(lambda: self._ping(), 10, "redis-server to answer")

    def _client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket), retry=Retry(NoBackoff(), 0))

    def _ping(self) -> bool:
        try:
            return bool(self._client().ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        try:
            self._client().shutdown()
        except redis.RedisError:
            pass
        wait_for(lambda: not self._ping() and not (self.folder / "redis.pid").exists(), 10, "redis-server to stop")


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def redis_server(short_tmp: Path) -> Iterator[RedisServer]:
    """A private redis-server for one test (the folder's name is short: unix socket paths are limited)."""
    server = RedisServer(short_tmp / "r")
    server.start()
    yield server
    server.stop()
