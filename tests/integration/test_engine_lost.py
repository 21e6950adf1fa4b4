"""The Docker engine goes away during the hidden suite of `grader grade`: an infra_error report, exit 3,
one line saying so, and what the job left is removed by `grader reap` once the engine is back.

The grader reaches the real engine through a socat proxy of its socket; killing the proxy is the engine
going away for the grader, while the engine itself stays up for the rest of the tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.sandbox.docker import ROLE_LABEL, SUBMISSION_LABEL
from tests.integration.test_queue import app_files
from tests.tiny import write_tiny_assignment

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _proxy(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    path = folder / "docker.sock"
    process = subprocess.Popen(["socat", f"UNIX-LISTEN:{path},fork,mode=600", "UNIX-CONNECT:/var/run/docker.sock"])
    deadline = time.monotonic() + 10
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return process, f"unix://{path}"


def test_engine_lost_during_the_suite_is_infra_error_exit_3_with_a_report(settings, short_tmp, git_repo, engine, graded_ids):
    repo = git_repo(files=app_files(sleep=8))
    assignments = write_tiny_assignment(short_tmp / "a")
    proxy, host = _proxy(short_tmp)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GRADER_")}, "GRADER_DOCKER_HOST": host,
        "GRADER_DATA_DIR": str(settings.paths.data_dir), "GRADER_ASSIGNMENTS_DIR": str(assignments),
    }
    before = {c.id for c in engine.containers.list(all=True, filters={"label": SUBMISSION_LABEL})}
    grading = subprocess.Popen(
        [sys.executable, "-m", "grader", "grade", str(repo), "--assignment", "tiny",
         "--out", str(settings.paths.reports_dir), "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and grading.poll() is None:
            apps = [c for c in engine.containers.list(filters={"label": f"{ROLE_LABEL}=app"}) if c.id not in before]
            if apps:
                graded_ids.append(apps[0].labels[SUBMISSION_LABEL])
                break
            time.sleep(0.2)
        time.sleep(2.5)  # the app boots in about a second; the hidden test then sleeps 8 s
        proxy.kill()
        out, err = grading.communicate(timeout=120)
    finally:
        proxy.kill()
        grading.kill()
    assert grading.returncode == 3, err[-3000:]
    report = json.loads(out)
    assert report["status"] == "infra_error" and report["score"] == 0
    assert "the Docker engine failed or went away" in report["reason"] and "\n" not in report["reason"]
    assert "Traceback" not in err, err[-3000:]
    assert (settings.paths.reports_dir / report["id"] / "report.json").exists()
    assert graded_ids and graded_ids[-1] == report["id"]
    left = engine.containers.list(all=True, filters={"label": f"{SUBMISSION_LABEL}={report['id']}"})
    assert left, "the engine was unreachable, so the containers are still there for the reaper"
    reap = subprocess.run([sys.executable, "-m", "grader", "reap"], env={**env, "GRADER_DOCKER_HOST": ""}, capture_output=True,
                          text=True, timeout=120)
    assert reap.returncode == 0 and report["id"] in reap.stderr, reap.stderr
    assert engine.containers.list(all=True, filters={"label": f"{SUBMISSION_LABEL}={report['id']}"}) == []

