"""Hostile suites of the candidate's own tests, run for real under the tight limits of conftest.py (TIGHT) and a
small time budget: each run ends normally with a CandidateTests value, within the budget and its grace.

The images are built with the network (their layers, with the test tools, may be cold); only the tests run
under TIGHT. The network suite is added to the reference's own, so its layer (the reference's pins and the test
tools) is built here too: test_hostile.py grades the reference offline. Never run these suites on the host.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from grader.assignments.model import load_assignment
from grader.models import CandidateTests, Snapshot
from grader.pipeline import new_submission_id
from grader.sandbox.docker import ROLE_LABEL, SUBMISSION_LABEL, DockerSandbox, remove_submission_resources
from grader.settings import PROJECT_ROOT, Settings
from grader.stages.build import build_image
from grader.stages.candidate_tests import KILL_GRACE_S, run_candidate_tests
from tests.conftest import REFERENCE
from tests.hostile.conftest import GUNICORN_REQUIREMENTS, TIGHT
from tests.integration.conftest import engine, leftovers  # noqa: F401  (`engine` is re-exported as a fixture)

pytestmark = [pytest.mark.docker, pytest.mark.slow]

BUDGET_S = 8
SLACK_S = 15.0  # container start, the reads, removal, on a shared 2-core machine
WSGI = 'def app(environ, start_response):\n    start_response("200 OK", [])\n    return [b"ok"]\n'

LOOP = '''
def test_quick():
    assert True


def test_forever():
    while True:
        pass


def test_never_reached():
    assert True
'''

FORK_BOMB = '''
import os


def test_quick():
    assert True


def test_fork_bomb():
    while True:
        try:
            os.fork()
        except OSError:
            pass
'''

# 192.0.2.1 is TEST-NET-1 (documentation only); in a container without a network nothing is sent anyway.
NETWORK = '''
import socket
import urllib.request


def test_only_loopback():
    print("INTERFACES", [name for _index, name in socket.if_nameindex()])
    assert [name for _index, name in socket.if_nameindex()] == ["lo"]


def test_tcp_out():
    socket.create_connection(("192.0.2.1", 80), timeout=3).close()


def test_dns_and_http_out():
    urllib.request.urlopen("http://example.com/", timeout=3)
'''


@dataclass
class Run:
    result: CandidateTests
    wall_s: float
    peak_processes: int
    network_mode: str
    survivors: int


def _container_processes(container_id: str) -> int:
    """Processes on this host whose cgroup is the container's (the host sees the container's processes)."""
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cgroup") as handle:
                    count += container_id in handle.read()
            except OSError:
                continue
    return count


class _Watch(threading.Thread):
    """Samples the job's tests container while it runs: its network mode and how many processes it has."""

    def __init__(self, client: docker.DockerClient, job: str) -> None:
        super().__init__(daemon=True)
        self.client, self.job = client, job
        self.stop, self.peak, self.network, self.container = threading.Event(), 0, "", ""

    def run(self) -> None:
        selector = {"label": [f"{SUBMISSION_LABEL}={self.job}", f"{ROLE_LABEL}=tests"]}
        while not self.stop.wait(0.2):
            if not self.container:
                found = self.client.containers.list(filters=selector)
                if found:
                    self.container, self.network = found[0].id, found[0].attrs["HostConfig"]["NetworkMode"]
            if self.container:
                self.peak = max(self.peak, _container_processes(self.container))


@pytest.fixture(scope="module")
def suites(engine: docker.DockerClient) -> Iterator[dict[str, Run]]:  # noqa: F811
    """Each hostile suite built and run once; the runs by name."""
    root = Path(tempfile.mkdtemp(prefix="gt-ct-", dir="/tmp"))
    network = Settings(data_dir=root / "var", reports_dir=root / "reports")
    tight = network.replace(**TIGHT, candidate_tests_s=BUDGET_S)
    notes = load_assignment(PROJECT_ROOT / "assignments", "flask-notes")
    runs: dict[str, Run] = {}
    jobs: list[str] = []
    try:
        for name, suite in {"loop": LOOP, "fork_bomb": FORK_BOMB, "network": NETWORK}.items():
            job = new_submission_id()
            jobs.append(job)
            tree = root / name
            files = {"requirements.txt": GUNICORN_REQUIREMENTS, "wsgi.py": WSGI}
            if name == "network":
                shutil.copytree(REFERENCE, tree, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.db", "expected.toml"))
                files = {}
            for path, text in {**files, f"tests/test_{name}.py": suite}.items():
                (tree / path).parent.mkdir(parents=True, exist_ok=True)
                (tree / path).write_text(text)
            snapshot = Snapshot(submission_id=job, url=str(tree), ref=None, commit="0" * 40, path=tree)
            image = build_image(snapshot, network, DockerSandbox(engine, network))
            watch = _Watch(engine, job)
            watch.start()
            started = time.monotonic()
            result = run_candidate_tests(image, notes, tight, DockerSandbox(engine, tight), tree)
            wall = time.monotonic() - started
            watch.stop.set()
            watch.join(timeout=10)
            survivors = _container_processes(watch.container) if watch.container else -1
            runs[name] = Run(result, wall, watch.peak, watch.network, survivors)
            print(f"{name}: wall={wall:.1f}s peak_processes={watch.peak} {result.model_dump(exclude={'output_tail'})}")
        yield runs
    finally:
        for job in jobs:
            remove_submission_resources(engine, job)
        assert leftovers(engine, jobs) == []
        shutil.rmtree(root, ignore_errors=True)


def _ended_in_time(run: Run) -> None:
    assert run.wall_s < BUDGET_S + KILL_GRACE_S + SLACK_S, f"took {run.wall_s:.1f} s"
    assert run.survivors == 0, "processes of the tests container outlived the call"


def test_an_endless_test_is_stopped_at_the_budget_and_the_tests_before_it_count(suites):
    run = suites["loop"]
    assert run.result.ran and run.result.passed == 1 and run.result.failed == 0
    assert run.result.note == f"stopped at the time budget of {BUDGET_S} s; the counts are those of the tests that ended before it"
    assert run.wall_s >= BUDGET_S
    assert "KeyboardInterrupt" in run.result.output_tail
    _ended_in_time(run)


def test_a_fork_bomb_is_held_at_the_pids_limit_and_stopped(suites):
    run = suites["fork_bomb"]
    assert run.result.ran and run.result.note.startswith(f"stopped at the time budget of {BUDGET_S} s")
    assert 0 < run.peak_processes <= TIGHT["pids"], f"{run.peak_processes} processes in the tests container"
    _ended_in_time(run)


def test_a_suite_that_tries_the_network_has_only_loopback(suites):
    run = suites["network"]
    assert run.network_mode == "none"
    assert (run.result.passed, run.result.failed) == (8 + 1, 2), run.result.output_tail
    assert run.result.failing == ["tests/test_network.py::test_tcp_out", "tests/test_network.py::test_dns_and_http_out"]
    assert "Network is unreachable" in run.result.output_tail
    assert "name resolution" in run.result.output_tail
    assert run.result.note == ""
    _ended_in_time(run)
