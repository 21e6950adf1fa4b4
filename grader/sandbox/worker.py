"""The candidate's background worker (e.g. Celery) in a container of its own beside the app: the submission's
image, the app's environment plus `PGAPPNAME` naming its database sessions, the candidate's limits, the pod's
namespace. Hidden tests start, stop and kill it through the lane (grader/stages/lane.py); its output is kept.

A worker that never becomes ready is the candidate's failure and costs only the tests that need it (BootFailed);
killing it also ends its PostgreSQL sessions, as the death of any client would once noticed.
"""

from __future__ import annotations

import json
import shlex
import time

from grader.errors import BootFailed
from grader.models import Pod
from grader.sandbox import ContainerSpec, Sandbox
from grader.sandbox.forkserver import IMAGE_PATH
from grader.sandbox.pod import APP_USER
from grader.sandbox.services import terminate_sessions
from grader.settings import Settings


def session_name(n: int) -> str:
    """The worker's `PGAPPNAME`: its database sessions can be found, and ended, by it."""
    return f"grader-worker-{n}"


def _numbered(command: str, n: int) -> str:
    return command.replace("{n}", str(n))


def start_worker(sandbox: Sandbox, pod: Pod, command: str, preload: list[str], n: int) -> str:
    """The worker's container, started (its readiness is `wait_until_ready`'s)."""
    launch = {"preload": preload, "setup": [], "serve": _numbered(command, n)}
    return sandbox.start(ContainerSpec(
        image=pod.image, command=["python", IMAGE_PATH, "launch", json.dumps(launch)], submission_id=pod.submission_id,
        role="worker", owner=pod.owner, user=APP_USER, lane=pod.lane, workdir="/app",
        environment={**pod.environment, "PGAPPNAME": session_name(n)}, network=f"container:{pod.relay_container}",
        limits="candidate",
    ))


def wait_until_ready(
    sandbox: Sandbox, container: str, ready: str, n: int, timeout_s: float, settings: Settings,
) -> float:
    """Run the ready command in the worker's container until it exits 0; seconds it took. BootFailed with the
    worker's output when it exits first or is not ready in time."""
    started = time.monotonic()
    argv = shlex.split(_numbered(ready, n))
    while True:
        state = sandbox.state(container)
        if not state.running:
            raise BootFailed(
                f"the worker exited with code {state.exit_code} before it was ready",
                log_tail=sandbox.logs(container, settings.sandbox.log_bytes),
            )
        left = timeout_s - (time.monotonic() - started)
        if left <= 0:
            raise BootFailed(
                f"the worker was not ready within {timeout_s:.0f} s (`{_numbered(ready, n)}` never succeeded)",
                log_tail=sandbox.logs(container, settings.sandbox.log_bytes), limit="boot_time",
            )
        check = sandbox.exec(container, argv, user=APP_USER, workdir="/app", timeout=max(1.0, min(15.0, left)), limit=4096)
        if check.exit_code == 0:
            return round(time.monotonic() - started, 3)
        time.sleep(0.5)


def kill_worker(sandbox: Sandbox, pod: Pod, container: str, n: int) -> int:
    """SIGKILL every process of the worker, then end its database sessions; how many sessions were ended."""
    sandbox.kill(container)
    return terminate_sessions(sandbox, pod, session_name(n)) if "postgresql" in pod.services else 0
