"""The reaper removes what a dead process left, and nothing a live one still owns."""

from __future__ import annotations

import socket
import subprocess

import docker.errors
import pytest

from grader.owner import proc_stat
from grader.sandbox.docker import submission_labels
from grader.sandbox.reaper import reap
from grader.settings import Settings

pytestmark = pytest.mark.docker


def _dead_owner() -> str:
    process = subprocess.Popen(["sleep", "30"])
    stat = proc_stat(str(process.pid))
    owner = f"{socket.gethostname()}/{process.pid}:{stat[1] if stat else ''}"
    process.kill()
    process.wait()
    return owner


def test_reaper_removes_only_abandoned_jobs(engine, graded_ids):
    """A container and volume of a killed owner go; those of this live process stay."""
    image = Settings().sandbox.relay_image
    dead_job, live_job = "reap-dead", "reap-live"
    graded_ids.extend([dead_job, live_job])
    dead = engine.containers.create(image, command=["-V"], labels=submission_labels(dead_job, "app", _dead_owner()))
    engine.volumes.create(name="grader-reap-dead", labels=submission_labels(dead_job, "data", _dead_owner()))
    live = engine.containers.create(image, command=["-V"], labels=submission_labels(live_job, "app"))
    elsewhere = engine.containers.create(
        image, command=["-V"], labels=submission_labels("reap-elsewhere", "app", "another-host/1:1"),
    )
    graded_ids.append("reap-elsewhere")
    try:
        removed = reap(engine)
        assert dead_job in removed and live_job not in removed and "reap-elsewhere" not in removed, removed
        engine.containers.get(elsewhere.id)  # another host's grading is judged by that host's reaper
        assert any(r.startswith("volume") for r in removed[dead_job])
        engine.containers.get(live.id)
        with pytest.raises(docker.errors.NotFound):
            engine.containers.get(dead.id)
    finally:
        live.remove(force=True)
        elsewhere.remove(force=True)
