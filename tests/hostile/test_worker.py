"""A candidate's background worker that misbehaves, driven as a hidden test drives it (the lane's worker): a fork
bomb in a task, a task that reaches for the network, a worker that kills its own container. Each stays in its
container and its limits, the grader's side goes on, and the next worker starts clean."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from grader.assignments.model import load_assignment
from grader.errors import BootFailed
from grader.models import SubmissionRequest
from grader.pipeline import new_submission_id
from grader.sandbox.docker import ROLE_LABEL, SUBMISSION_LABEL, DockerSandbox, remove_submission_resources
from grader.sandbox.pod import start_pod
from grader.settings import Settings
from grader.stages.build import build_image
from grader.stages.intake import fetch_snapshot
from grader.stages.lane import Lane
from tests.integration.conftest import leftovers
from tests.pods import APP, REQUIREMENTS, write_services_assignment

pytestmark = [pytest.mark.docker, pytest.mark.slow]

WORKER = """
[run.worker]
command = "python /app/worker.py {n}"
ready = "test -e /tmp/ready-{n}"
ready_timeout_s = 15
"""
# The worker's misbehaviour is chosen by the start's number: 1 bombs, 2 reaches out, 3 kills itself, 4 behaves.
BEHAVIOUR = '''
import os, socket, sys, time

n = sys.argv[1]
if n == "3":
    os.kill(1, 9)  # its own container's first process: itself, which the kernel does not let it kill
    os._exit(9)
open(f"/tmp/ready-{n}", "w").close()
if n == "1":
    while True:
        try:
            os.fork()
        except OSError:
            time.sleep(0.01)
if n == "2":
    for target in (("192.0.2.1", 80), ("8.8.8.8", 53)):  # TEST-NET-1 and a public resolver: no route exists
        try:
            socket.create_connection(target, timeout=3).close()
            print("NETWORK REACHED", target, flush=True)
        except OSError as exc:
            print("no network:", type(exc).__name__, exc, flush=True)
    time.sleep(3600)
print("worker", n, "idle", flush=True)
time.sleep(3600)
'''
PIDS = 64


@pytest.fixture
def lane(settings: Settings, short_tmp: Path, engine: docker.DockerClient, git_repo) -> Iterator[Lane]:
    assignments = write_services_assignment(short_tmp, worker=WORKER)
    used = settings.replace(assignments_dir=assignments, pids=PIDS)
    assignment = load_assignment(assignments, "svc")
    job = new_submission_id()
    repo = git_repo(files={"wsgi.py": APP, "worker.py": BEHAVIOUR, "requirements.txt": REQUIREMENTS})
    sandbox = DockerSandbox(engine, used)
    try:
        snapshot = fetch_snapshot(SubmissionRequest(id=job, source=str(repo), assignment="svc"), used)
        image = build_image(snapshot, used, sandbox)
        pod = start_pod(image, assignment, used, sandbox)
        work = used.paths.work_dir / job
        work.mkdir(parents=True, exist_ok=True)
        lane = Lane(pod, sandbox, used, serve_by_category={}, work=work, worker=assignment.run.worker)
        yield lane
        lane.close()
    finally:
        remove_submission_resources(engine, job)
    assert leftovers(engine, [job]) == []


def _workers(engine: docker.DockerClient, job: str) -> list:
    return engine.containers.list(all=True, filters={"label": [f"{SUBMISSION_LABEL}={job}", f"{ROLE_LABEL}=worker"]})


def test_a_misbehaving_worker_stays_in_its_container(lane: Lane, engine: docker.DockerClient) -> None:
    job = lane.pod.submission_id
    assert lane.worker is not None
    with pytest.raises(BootFailed, match="the worker was not ready within 15 s"):
        lane.worker.start()  # at its pids limit nothing more starts in it, not even the ready command
    container = engine.containers.get(lane.worker.container)
    assert container.attrs["HostConfig"]["PidsLimit"] == PIDS
    assert container.attrs["HostConfig"]["NetworkMode"] == f"container:{lane.pod.relay_container}"
    assert container.stats(stream=False)["pids_stats"]["current"] <= PIDS
    assert lane.app_running() and lane.sandbox.answers_http(lane.pod.socket_path, "/ready", timeout=5, proxied=True), (
        "the app beside a fork bomb still answers"
    )
    assert lane.worker.kill() == 0, "no database session to end"
    assert not lane.worker.running()

    lane.worker.start()
    output = ""
    for _ in range(40):
        output = lane.worker.output()
        if output.count("no network") == 2:
            break
        time.sleep(0.25)
    assert "NETWORK REACHED" not in output and output.count("no network") == 2, output
    assert lane.worker.stop() is not None

    with pytest.raises(BootFailed, match="the worker exited"):
        lane.worker.start()
    assert not lane.worker.running()

    behaving = lane.worker.start()
    assert behaving["n"] == 4 and lane.worker.running()
    assert len(_workers(engine, job)) == 1, "each start replaces the worker before"
    rows = lane.sql([("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'grader-worker-%%'", [])])
    assert rows == [[0]]
    remove_submission_resources(engine, job)
    assert leftovers(engine, [job]) == []


def test_reset_database_empties_postgresql_even_on_an_idle_app(lane: Lane) -> None:
    """On an idle app (no server, nothing to stop) reset_database still gives an empty PostgreSQL database."""
    lane.restart(fresh_db=False, setup=False, serve=False)
    lane.sql([("CREATE TABLE left_behind (id integer)", [])])
    old = lane.pod.database
    lane.reset_database()
    assert lane.pod.database != old
    assert lane.sql([("SELECT to_regclass('left_behind') IS NULL", [])]) == [[True]]
