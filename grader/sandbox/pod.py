"""The pod: a trusted relay container that owns a network namespace with only loopback, and the candidate's
app container joined to it.

The relay owns the namespace, so the app container can be replaced (a restart on a fresh database) without
breaking the unix socket the hidden tests talk through. Everything here goes through the Sandbox seam.
"""

from __future__ import annotations

import json
import secrets
import time

from grader.assignments.model import Assignment
from grader.errors import BootFailed, InfraError
from grader.models import Pod, SubmissionImage
from grader.owner import current_owner
from grader.sandbox import ContainerSpec, ExecResult, Sandbox
from grader.sandbox.forkserver import IMAGE_PATH
from grader.sandbox.images import APP_UID
from grader.sandbox.relay import SOCKET_NAME, socket_dir, start_relay
from grader.sandbox.services import (
    fresh_state,
    service_environment,
    set_superuser_password,
    start_database_forward,
    start_services,
    wait_for_services,
)
from grader.settings import Settings

APP_USER = f"{APP_UID}:{APP_UID}"


def _launch_command(pod: Pod, setup: bool, serve: bool) -> list[str]:
    spec = {"preload": pod.preload, "setup": pod.setup if setup and serve else [], "serve": pod.serve if serve else None}
    return ["python", IMAGE_PATH, "launch", json.dumps(spec)]


def _new_volume(sandbox: Sandbox, submission_id: str, owner: str, settings: Settings) -> str:
    return sandbox.create_volume(submission_id, owner, settings.sandbox.data_size, APP_UID)


def create_app_container(sandbox: Sandbox, pod: Pod, settings: Settings, setup: bool = True, serve: bool = True) -> str:
    """Start the candidate's app in the relay's namespace: no network, no privileges, bounded everything.

    With `serve=False` the container runs no server, only the fork server for Flask CLI commands.
    """
    return sandbox.start(ContainerSpec(
        image=pod.image, command=_launch_command(pod, setup, serve), submission_id=pod.submission_id, role="app", owner=pod.owner,
        user=APP_USER, lane=pod.lane, workdir="/app", environment=pod.environment,
        network=f"container:{pod.relay_container}", volumes={pod.volume: "/data"}, limits="candidate",
    ))


def start_pod(image: SubmissionImage, assignment: Assignment, settings: Settings, sandbox: Sandbox) -> Pod:
    """Start relay and app of the first lane, and wait until the app answers HTTP; BootFailed with its output if
    it never does."""
    return _start(image.submission_id, image.tag, assignment, settings, sandbox, lane=0)


def start_lane(first: Pod, assignment: Assignment, settings: Settings, sandbox: Sandbox, lane: int) -> Pod:
    """Start relay and app of another lane: idle if its first category starts idle, else set up and serving that
    category's way, without waiting (the caller waits, and so holds the pod even if the boot fails)."""
    return _start(first.submission_id, first.image, assignment, settings, sandbox, lane=lane)


def app_environment(assignment: Assignment, database_path: str) -> dict[str, str]:
    """What the app's processes get: a fresh SECRET_KEY of their own, the assignment's run.env with
    `{database_path}` filled in, and its run.parameters drawn at random. Nothing of the grader's."""
    return {
        "SECRET_KEY": secrets.token_hex(32),
        "HOME": "/tmp",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        **{key: value.format(database_path=database_path) for key, value in assignment.run.env.items()},
        **{key: _drawn(kind) for key, kind in assignment.run.parameters.items()},
    }


def _drawn(kind: str) -> str:
    if kind == "secret":
        return secrets.token_hex(32)
    low, high = (int(part) for part in kind.removeprefix("int:").split("-"))
    return str(low + secrets.randbelow(high - low + 1))


def _start(job: str, image: str, assignment: Assignment, settings: Settings, sandbox: Sandbox, lane: int) -> Pod:
    categories = assignment.lanes()[lane]
    lane_id = categories[0].lane
    folder = socket_dir(settings, job, lane_id)
    run = assignment.run
    owner = current_owner()
    started_at = time.time()
    relay = start_relay(sandbox, settings, submission_id=job, owner=owner, folder=folder, port=run.port, lane=lane_id)
    environment = app_environment(assignment, run.database_path)
    pod = Pod(
        submission_id=job, owner=owner, image=image, started_at=started_at, app_container="", relay_container=relay,
        volume=_new_volume(sandbox, job, owner, settings), socket_path=folder / SOCKET_NAME,
        environment=environment, setup=list(run.setup), preload=list(run.preload),
        serve=assignment.serve_of(categories[0]), port=run.port, ready_path=run.ready_path,
        database_path=run.database_path, lane=lane_id, services=list(run.services), app_port=run.app_port,
    )
    pod = _with_services(sandbox, settings, pod, name=lane_id)
    serve = lane == 0 or not categories[0].idle_start
    return _launch_app(sandbox, pod, settings, serve=serve, wait=lane == 0)


def start_spare(pod: Pod, serve: str, name: str, settings: Settings, sandbox: Sandbox) -> Pod:
    """A second pod of the same app, set up on a fresh database and served with `serve`, booted while the
    current one is still in use: the next category that serves the app this way starts on it at once.
    BootFailed as from `start_pod`."""
    folder = socket_dir(settings, pod.submission_id, name)
    relay = start_relay(
        sandbox, settings, submission_id=pod.submission_id, owner=pod.owner, folder=folder, port=pod.port, lane=pod.lane
    )
    spare = pod.model_copy(update={
        "relay_container": relay, "socket_path": folder / SOCKET_NAME, "serve": serve,
        "volume": _new_volume(sandbox, pod.submission_id, pod.owner, settings), "database": None,
    })
    return _launch_app(sandbox, _with_services(sandbox, settings, spare, name=name), settings)


def _with_services(sandbox: Sandbox, settings: Settings, pod: Pod, *, name: str) -> Pod:
    """The pod's own services (none unless the assignment names them), ready, with a fresh database and broker."""
    if not pod.services:
        return pod
    common = dict(job=pod.submission_id, owner=pod.owner, lane=pod.lane, relay=pod.relay_container)
    container = start_services(
        sandbox, settings, **common, services=pod.services, proxy_port=pod.port, app_port=pod.app_port or pod.port,
    )
    forward = start_database_forward(sandbox, settings, **common, name=f"{name}-pg") if "postgresql" in pod.services else None
    ready = wait_for_services(sandbox, container, pod.services, pod.port, settings)
    password = set_superuser_password(sandbox, container) if "postgresql" in pod.services else ""
    pod = pod.model_copy(update={
        "services_container": container, "database_socket_dir": forward, "superuser_password": password,
        "services_ready_s": ready,
    })
    return _fresh_services(sandbox, pod)


def _fresh_services(sandbox: Sandbox, pod: Pod) -> Pod:
    """A new database and role, an emptied broker, and the app's environment saying so."""
    if not pod.services:
        return pod
    pod = pod.model_copy(update={"database": fresh_state(sandbox, pod)})
    return pod.model_copy(update={"environment": {**pod.environment, **service_environment(pod)}})


def _launch_app(
    sandbox: Sandbox, pod: Pod, settings: Settings, *, setup: bool = True, serve: bool = True, wait: bool = True,
) -> Pod:
    """Start the pod's app container (idle unless `serve`) and, when it serves and `wait`, wait until it answers."""
    app = create_app_container(sandbox, pod, settings, setup=setup, serve=serve)
    pod = pod.model_copy(update={"app_container": app, "serving": pod.serve if serve else ""})
    if serve and wait:
        wait_until_ready(pod, sandbox, settings)
    return pod


def wait_until_ready(pod: Pod, sandbox: Sandbox, settings: Settings) -> None:
    """Poll the app through the relay at a fine interval until any HTTP answer, an exit, or the boot limit."""
    deadline = time.monotonic() + settings.timeouts.boot_s
    memory = settings.sandbox.memory
    proxied = "nginx" in pod.services
    while True:
        if sandbox.answers_http(pod.socket_path, pod.ready_path, timeout=2, proxied=proxied):
            return
        app = sandbox.state(pod.app_container)
        if not app.running and app.status != "created":
            oom = app.oom_killed or sandbox.oom_kills(pod.submission_id, pod.started_at) > 0
            why = f"exited with code {app.exit_code}" if app.status == "exited" else "was removed"
            if oom:
                why += f" after processes were killed at its memory limit ({memory})"
            raise BootFailed(
                f"the app {why} before answering HTTP; see its output below",
                log_tail=sandbox.logs(pod.app_container, settings.sandbox.log_bytes), limit="memory" if oom else None,
            )
        if not sandbox.state(pod.relay_container).running:
            raise InfraError("the relay stopped while the app was booting")
        if pod.services_container and not sandbox.state(pod.services_container).running:
            raise InfraError(f"the pod's services stopped while the app was booting: {sandbox.logs(pod.services_container, 1500)}")
        if time.monotonic() > deadline:
            oom = sandbox.oom_kills(pod.submission_id, pod.started_at) > 0
            killed = f"; processes were killed at its memory limit ({memory})" if oom else ""
            where = (
                f"Gunicorn not answering behind Nginx: nothing answered on 127.0.0.1:{pod.app_port}" if proxied
                else f"the app did not answer HTTP on 127.0.0.1:{pod.port}"
            )
            raise BootFailed(
                f"{where} within {settings.timeouts.boot_s:.0f} s (boot time limit){killed}; see its output below",
                log_tail=sandbox.logs(pod.app_container, settings.sandbox.log_bytes), limit="memory" if oom else "boot_time",
            )
        time.sleep(0.1)


def ready_or_idle(pod: Pod, sandbox: Sandbox, settings: Settings) -> tuple[Pod, BootFailed | None]:
    """Wait until the pod's just-started app answers. If it never does, an idle app on the same database takes
    its place, so Flask CLI commands and SQL still have somewhere to run; the failure comes back with it."""
    try:
        wait_until_ready(pod, sandbox, settings)
        return pod, None
    except BootFailed as exc:
        return restart_app(pod, sandbox, settings, fresh_db=False, setup=False, serve=False), exc


def restart_app(
    pod: Pod, sandbox: Sandbox, settings: Settings, *, fresh_db: bool, setup: bool, serve: bool = True, wait: bool = True,
) -> Pod:
    """Replace the app container, on a new empty data volume when `fresh_db`; the relay stays.

    With `wait=False` the caller waits (`wait_until_ready`), so it holds the new pod even if the boot fails."""
    sandbox.remove(pod.app_container)
    volume = pod.volume
    if fresh_db:
        sandbox.remove_volume(pod.volume)
        volume = _new_volume(sandbox, pod.submission_id, pod.owner, settings)
        pod = _fresh_services(sandbox, pod)
    return _launch_app(sandbox, pod.model_copy(update={"volume": volume}), settings, setup=setup, serve=serve, wait=wait)


def exec_in_app(pod: Pod, sandbox: Sandbox, argv: list[str], timeout: float, limit: int) -> ExecResult:
    """Run a command in the app's environment, as the app user, killed after `timeout` seconds.

    An app container that is gone or stopped is the app's doing (it exited or killed itself), so it
    is a result for the test to judge; only a failing engine is an InfraError.
    """
    if not sandbox.state(pod.app_container).running:
        return ExecResult(-1, "the app container is not running: the app exited, was killed or stopped itself", False)
    return sandbox.exec(pod.app_container, argv, user=APP_USER, workdir="/app", timeout=timeout, limit=limit)
