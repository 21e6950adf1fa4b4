"""Stage 3: the pod: a trusted relay container that owns a network namespace with only loopback,
and the candidate's app container joined to it.

The relay (socat) owns the namespace, so the app container can be replaced (a restart on a fresh
database) without breaking the unix socket the hidden tests talk through.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
from docker.models.containers import Container

from grader.assignments.model import Assignment
from grader.errors import BootFailed, InfraError
from grader.models import Pod, SubmissionImage
from grader.sandbox import forkserver
from grader.sandbox.docker import current_owner, engine_errors, job_labels, log_tail, oom_kills
from grader.sandbox.images import APP_UID
from grader.sandbox.limits import hardening
from grader.sandbox.transport import unix_session
from grader.settings import Settings

SOCKET_NAME = "app.sock"


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: str
    timed_out: bool


def _new_volume(client: docker.DockerClient, pod_job: str, owner: str, settings: Settings) -> str:
    name = f"grader-{pod_job}-data-{uuid.uuid4().hex[:8]}"
    with engine_errors("creating the data volume"):
        client.volumes.create(
            name=name, driver="local", labels=job_labels(pod_job, "data", owner),
            driver_opts={
                "type": "tmpfs", "device": "tmpfs",
                "o": f"size={settings.sandbox.data_size},uid={APP_UID},gid={APP_UID},mode=0700",
            },
        )
    return name


def _launch_command(pod: Pod, setup: bool, serve: bool) -> list[str]:
    spec = {"preload": pod.preload, "setup": pod.setup if setup and serve else [], "serve": pod.serve if serve else None}
    return ["python", "-c", forkserver.source(), "launch", json.dumps(spec)]


def create_app_container(
    client: docker.DockerClient, pod: Pod, settings: Settings, setup: bool = True, serve: bool = True
) -> Container:
    """Start the candidate's app in the relay's namespace: no network, no privileges, bounded everything.

    With `serve=False` the container runs no server, only the fork server for Flask CLI commands.
    """
    command = _launch_command(pod, setup, serve)
    with engine_errors("starting the app container"):
        container = client.containers.create(
            pod.image,
            command=command,
            user=f"{APP_UID}:{APP_UID}",
            working_dir="/app",
            environment=pod.environment,
            network_mode=f"container:{pod.harness_container}",
            volumes={pod.volume: {"bind": "/data", "mode": "rw"}},
            labels=job_labels(pod.job_id, "app", pod.owner, pod.lane),
            **hardening(settings),
        )
        container.start()
    return container


def start_pod(image: SubmissionImage, assignment: Assignment, settings: Settings, client: docker.DockerClient) -> Pod:
    """Start relay and app of the first lane, and wait until the app answers HTTP; BootFailed with its output if
    it never does."""
    return _start(image.job_id, image.tag, assignment, settings, client, lane=0)


def start_lane(first: Pod, assignment: Assignment, settings: Settings, client: docker.DockerClient, lane: int) -> Pod:
    """Start relay and app of another lane: idle if its first category starts idle, else set up and serving that
    category's way, without waiting (the caller waits, and so holds the pod even if the boot fails)."""
    return _start(first.job_id, first.image, assignment, settings, client, lane=lane)


def _socket_dir(settings: Settings, job: str, name: str) -> Path:
    socket_dir = settings.paths.sockets_dir / job / name
    if len(str(socket_dir / SOCKET_NAME)) > 100:
        raise InfraError(f"the socket path under {settings.paths.sockets_dir} is too long for a unix socket; shorten data_dir")
    socket_dir.mkdir(parents=True, exist_ok=True)
    socket_dir.chmod(0o700)
    return socket_dir


def _start_relay(
    client: docker.DockerClient, settings: Settings, job: str, owner: str, socket_dir: Path, port: int, lane: str
) -> Container:
    with engine_errors("starting the harness relay"):
        return client.containers.run(
            settings.sandbox.relay_image,
            command=[f"UNIX-LISTEN:/run/grader/{SOCKET_NAME},fork,unlink-early,mode=600,backlog=512", f"TCP:127.0.0.1:{port}"],
            detach=True,
            user="0:0",
            network_mode="none",
            volumes={str(socket_dir): {"bind": "/run/grader", "mode": "rw"}},
            labels=job_labels(job, "harness", owner, lane),
            mem_limit="128m", pids_limit=128, cap_drop=["ALL"], security_opt=["no-new-privileges"], read_only=True,
        )


def _start(job: str, image: str, assignment: Assignment, settings: Settings, client: docker.DockerClient, lane: int) -> Pod:
    categories = assignment.lanes()[lane]
    lane_id = categories[0].lane
    socket_dir = _socket_dir(settings, job, lane_id)
    run = assignment.run
    owner = current_owner()
    relay = _start_relay(client, settings, job, owner, socket_dir, run.port, lane_id)
    secret_key = secrets.token_hex(32)
    started_at = time.time()
    environment = {
        "SECRET_KEY": secret_key,
        "HOME": "/tmp",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        **{key: value.format(database_path=run.database_path) for key, value in run.env.items()},
    }
    pod = Pod(
        job_id=job, owner=owner, image=image, started_at=started_at, app_container="", harness_container=relay.id,
        volume=_new_volume(client, job, owner, settings), socket_path=socket_dir / SOCKET_NAME,
        secret_key=secret_key, environment=environment, setup=list(run.setup), preload=list(run.preload),
        serve=assignment.serve_of(categories[0]), port=run.port, ready_path=run.ready_path,
        database_path=run.database_path, lane=lane_id,
    )
    serve = lane == 0 or not categories[0].idle_start
    return _launch_app(client, pod, settings, serve=serve, wait=lane == 0)


def start_spare(pod: Pod, serve: str, name: str, settings: Settings, client: docker.DockerClient) -> Pod:
    """A second pod of the same app, set up on a fresh database and served with `serve`, booted while the
    current one is still in use: the next category that serves the app this way starts on it at once.
    BootFailed as from `start_pod`."""
    socket_dir = _socket_dir(settings, pod.job_id, name)
    relay = _start_relay(client, settings, pod.job_id, pod.owner, socket_dir, pod.port, pod.lane)
    spare = pod.model_copy(update={
        "harness_container": relay.id, "socket_path": socket_dir / SOCKET_NAME, "serve": serve,
        "volume": _new_volume(client, pod.job_id, pod.owner, settings),
    })
    return _launch_app(client, spare, settings)


def _launch_app(
    client: docker.DockerClient, pod: Pod, settings: Settings, *, setup: bool = True, serve: bool = True,
    wait: bool = True,
) -> Pod:
    """Start the pod's app container (idle unless `serve`) and, when it serves and `wait`, wait until it answers."""
    app = create_app_container(client, pod, settings, setup=setup, serve=serve)
    pod = pod.model_copy(update={"app_container": app.id, "serving": pod.serve if serve else ""})
    if serve and wait:
        wait_until_ready(pod, client, settings)
    return pod


def wait_until_ready(pod: Pod, client: docker.DockerClient, settings: Settings) -> None:
    """Poll the app through the relay at a fine interval until any HTTP answer, an exit, or the boot limit."""
    deadline = time.monotonic() + settings.timeouts.boot_s
    session = unix_session(pod.socket_path)
    app = client.containers.get(pod.app_container)
    relay = client.containers.get(pod.harness_container)
    while True:
        try:
            session.get(f"https://app.sandbox{pod.ready_path}", timeout=2, allow_redirects=False, stream=True).close()
            return
        except Exception:
            pass
        app.reload()
        if app.status in ("exited", "dead"):
            code = app.attrs["State"].get("ExitCode")
            oom = app.attrs["State"].get("OOMKilled") or oom_kills(client, pod.job_id, pod.started_at) > 0
            why = f"exited with code {code}"
            if oom:
                why += f" after processes were killed at its memory limit ({settings.sandbox.memory})"
            raise BootFailed(
                f"the app {why} before answering HTTP; see its output below",
                log_tail=log_tail(app, settings.sandbox.log_bytes), limit="memory" if oom else None,
            )
        relay.reload()
        if relay.status != "running":
            raise InfraError("the harness relay stopped while the app was booting")
        if time.monotonic() > deadline:
            oom = oom_kills(client, pod.job_id, pod.started_at) > 0
            memory = f"; processes were killed at its memory limit ({settings.sandbox.memory})" if oom else ""
            raise BootFailed(
                f"the app did not answer HTTP on 127.0.0.1:{pod.port} within {settings.timeouts.boot_s:.0f} s "
                f"(boot time limit){memory}; see its output below",
                log_tail=log_tail(app, settings.sandbox.log_bytes), limit="memory" if oom else "boot_time",
            )
        time.sleep(0.1)


def ready_or_idle(pod: Pod, client: docker.DockerClient, settings: Settings) -> tuple[Pod, BootFailed | None]:
    """Wait until the pod's just-started app answers. If it never does, an idle app on the same database takes
    its place, so Flask CLI commands and SQL still have somewhere to run; the failure comes back with it."""
    try:
        wait_until_ready(pod, client, settings)
        return pod, None
    except BootFailed as exc:
        return restart_app(pod, client, settings, fresh_db=False, setup=False, serve=False), exc


def restart_app(
    pod: Pod, client: docker.DockerClient, settings: Settings, *, fresh_db: bool, setup: bool, serve: bool = True,
    wait: bool = True,
) -> Pod:
    """Replace the app container, on a new empty data volume when `fresh_db`; the relay stays.

    With `wait=False` the caller waits (`wait_until_ready`), so it holds the new pod even if the boot fails."""
    with engine_errors("replacing the app container"):
        try:
            client.containers.get(pod.app_container).remove(force=True)
        except docker.errors.NotFound:
            pass
        volume = pod.volume
        if fresh_db:
            try:
                client.volumes.get(pod.volume).remove(force=True)
            except docker.errors.NotFound:
                pass
            volume = _new_volume(client, pod.job_id, pod.owner, settings)
    return _launch_app(client, pod.model_copy(update={"volume": volume}), settings, setup=setup, serve=serve, wait=wait)


def exec_in_app(pod: Pod, client: docker.DockerClient, argv: list[str], timeout: float, limit: int) -> ExecResult:
    """Run a command in the app's environment, as the app user, killed after `timeout` seconds.

    An app container that is gone or stopped is the app's doing (it exited or killed itself), so it
    is a result for the test to judge; only a failing engine is an InfraError.
    """
    started = time.monotonic()
    with engine_errors("running a command in the app container"):
        try:
            container = client.containers.get(pod.app_container)
        except docker.errors.NotFound:
            container = None
        if container is None or container.status != "running":
            return ExecResult(-1, "the app container is not running: the app exited, was killed or stopped itself", False)
        exec_id = client.api.exec_create(
            container.id, ["timeout", "-k", "2", str(int(timeout)), *argv], user=f"{APP_UID}:{APP_UID}", workdir="/app",
        )["Id"]
        tail = bytearray()
        for chunk in client.api.exec_start(exec_id, stream=True):
            tail += chunk
            if len(tail) > 2 * limit:
                del tail[: len(tail) - limit]
        code = client.api.exec_inspect(exec_id).get("ExitCode")
    text = bytes(tail[-limit:]).decode("utf-8", errors="replace")
    timed_out = code == 124 or (code == 137 and time.monotonic() - started >= timeout)
    return ExecResult(exit_code=code if code is not None else -1, output=text, timed_out=timed_out)
