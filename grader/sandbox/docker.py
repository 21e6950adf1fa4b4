"""The Docker adapter: `DockerSandbox` (the Sandbox protocol on the Docker SDK), connecting, labelling,
cleaning up and reading files back safely. The word "engine" in this code base means this: the Docker engine."""

from __future__ import annotations

import contextlib
import io
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import docker
import docker.errors
import requests
from docker.models.containers import Container
from docker.types import Mount

from grader.errors import InfraError
from grader.owner import current_owner
from grader.sandbox import ContainerSpec, ContainerState, ExecResult, LabelledContainer, layers_digest
from grader.sandbox.limits import container_limits
from grader.sandbox.transport import BASE_URL, unix_session
from grader.settings import Settings

SUBMISSION_LABEL = "grader.job"  # its value is the submission id; the key predates the word, and the reaper reads it
ROLE_LABEL = "grader.role"
KIND_LABEL = "grader.kind"
OWNER_LABEL = "grader.owner"
LANE_LABEL = "grader.lane"


def connect(settings: Settings) -> docker.DockerClient:
    """A client for the engine, or InfraError saying how to start one."""
    try:
        client = docker.DockerClient(base_url=settings.sandbox.docker_host) if settings.sandbox.docker_host else docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        raise InfraError(
            f"the Docker engine is not reachable ({exc}); start it with `dockerd &` "
            "(or `make setup`), or point GRADER_DOCKER_HOST at a running engine"
        ) from None
    return client


def submission_labels(submission_id: str, role: str, owner: str | None = None, lane: str | None = None) -> dict[str, str]:
    labels = {SUBMISSION_LABEL: submission_id, ROLE_LABEL: role, OWNER_LABEL: owner or current_owner()}
    return {**labels, LANE_LABEL: lane} if lane else labels


@contextlib.contextmanager
def engine_errors(action: str) -> Iterator[None]:
    """Turn the engine's own failures into InfraError, the retried kind."""
    try:
        yield
    except docker.errors.ImageNotFound as exc:
        raise InfraError(f"{action}: image missing ({exc.explanation}); run `grader images build`") from None
    except (docker.errors.APIError, docker.errors.DockerException, ConnectionError, requests.RequestException) as exc:
        raise InfraError(f"{action}: the Docker engine failed or went away: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def remove_submission_resources(client: docker.DockerClient, submission_id: str) -> list[str]:
    """Remove every container, volume, network and image labelled with the job; return what went."""
    selector = {"label": f"{SUBMISSION_LABEL}={submission_id}"}
    removed: list[str] = []
    for container in client.containers.list(all=True, filters=selector):
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True, v=True)
            removed.append(f"container {container.short_id}")
    for network in client.networks.list(filters=selector):
        with contextlib.suppress(docker.errors.NotFound):
            network.remove()
            removed.append(f"network {network.short_id}")
    for volume in client.volumes.list(filters=selector):
        with contextlib.suppress(docker.errors.NotFound):
            volume.remove(force=True)
            removed.append(f"volume {volume.short_id}")
    for image in client.images.list(filters=selector):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            client.images.remove(image.id, force=True)
            removed.append(f"image {image.short_id}")
    return removed


def oom_kills(client: docker.DockerClient, submission_id: str, since: float) -> int:
    """How many times the kernel killed a process of the job's containers for memory since `since`.

    Docker's `State.OOMKilled` is set only when the container itself dies; a Gunicorn worker killed
    inside a running container shows only as an `oom` event. `until` is now, to the microsecond: the
    engine streams events until then, so a whole second ahead would cost up to a second of waiting.
    """
    try:
        events = client.events(
            since=int(since), until=f"{time.time():.6f}", decode=True,
            filters={"type": "container", "event": "oom", "label": f"{SUBMISSION_LABEL}={submission_id}"},
        )
        return sum(1 for _ in events)
    except docker.errors.NotFound:
        return 0


def log_tail(container: Container, limit: int) -> str:
    """The last `limit` bytes of a container's output, decoded leniently (it is hostile data)."""
    try:
        raw = container.logs(stdout=True, stderr=True, tail=200)
    except docker.errors.DockerException:
        return ""
    return raw[-limit:].decode("utf-8", errors="replace")


def copy_file_out(container: Container, path: str, dest: Path, limit: int) -> Path:
    """Copy one regular file out through the engine's archive API; links and oversize files are refused."""
    try:
        stream, _stat = container.get_archive(path)
    except docker.errors.NotFound:
        raise FileNotFoundError(f"{path} does not exist in the app container") from None
    buffer = io.BytesIO()
    for chunk in stream:
        buffer.write(chunk)
        if buffer.tell() > limit + 64 * 1024:
            raise ValueError(f"{path} is larger than {limit} bytes")
    buffer.seek(0)
    with tarfile.open(fileobj=buffer, mode="r:") as archive:
        member = archive.next()
        if member is None or not member.isreg():
            raise ValueError(f"{path} is not a regular file in the app container")
        source = archive.extractfile(member)
        assert source is not None
        dest.write_bytes(source.read(limit))
    return dest


PROXY_NOT_READY = (502, 503, 504)
"""What a proxy answers while nothing behind it does."""


class DockerSandbox:
    """The Sandbox protocol on a Docker engine; every engine failure becomes an InfraError."""

    def __init__(self, client: docker.DockerClient, settings: Settings) -> None:
        self.client, self.settings = client, settings

    @classmethod
    def connect(cls, settings: Settings) -> DockerSandbox:
        return cls(connect(settings), settings)

    def ping(self) -> None:
        with engine_errors("reaching the Docker engine"):
            self.client.ping()

    def image_id(self, name: str) -> str | None:
        with engine_errors(f"reading the image {name}"):
            try:
                return str(self.client.images.get(name).id)
            except docker.errors.ImageNotFound:
                return None

    def image_digest(self, name: str) -> str | None:
        with engine_errors(f"reading the image {name}"):
            try:
                layers = self.client.images.get(name).attrs.get("RootFS", {}).get("Layers") or []
            except docker.errors.ImageNotFound:
                return None
        return layers_digest(layers)

    def build_image(self, context: IO[bytes], tag: str, submission_id: str, shared: bool = False) -> str:
        labels = {KIND_LABEL: "runtime"} if shared else submission_labels(submission_id, "submission")
        with engine_errors("building the submission image"):
            image, _ = self.client.images.build(
                fileobj=context, custom_context=True, tag=tag, labels=labels, rm=True, forcerm=True, network_mode="none",
            )
        return str(image.id)

    def commit(self, container_id: str, repository: str, tag: str, labels: dict[str, str]) -> str:
        with engine_errors("saving the dependency layer"):
            image = self.client.containers.get(container_id).commit(
                repository=repository, tag=tag, conf={"Labels": labels, "Cmd": ["/bin/true"]},
            )
        return str(image.id)

    def create_volume(self, submission_id: str, owner: str, size: str, uid: int) -> str:
        name = f"grader-{submission_id}-data-{uuid.uuid4().hex[:8]}"
        with engine_errors("creating the data volume"):
            self.client.volumes.create(
                name=name, driver="local", labels=submission_labels(submission_id, "data", owner),
                driver_opts={"type": "tmpfs", "device": "tmpfs", "o": f"size={size},uid={uid},gid={uid},mode=0700"},
            )
        return name

    def remove_volume(self, name: str) -> None:
        with engine_errors("removing a data volume"), contextlib.suppress(docker.errors.NotFound):
            self.client.volumes.get(name).remove(force=True)

    def start(self, spec: ContainerSpec) -> str:
        mounts = [Mount(target, source, type="bind", read_only=True) for source, target in spec.binds]
        mounts += [Mount(target, source, type="bind", read_only=False) for source, target in spec.writable_binds]
        mounts += [Mount(target, volume, type="volume") for volume, target in spec.volumes.items()]
        with engine_errors(f"starting the {spec.role} container"):
            container = self.client.containers.create(
                spec.image, command=spec.command, user=spec.user, working_dir=spec.workdir,
                environment=spec.environment, network_mode=spec.network, mounts=mounts,
                labels=submission_labels(spec.submission_id, spec.role, spec.owner, spec.lane),
                **container_limits(spec.limits, self.settings),
            )
            container.start()
        return str(container.id)

    def wait(self, container_id: str, timeout: float) -> int | None:
        with engine_errors("waiting for a container"):
            container = self.client.containers.get(container_id)
            try:
                return int(container.wait(timeout=timeout).get("StatusCode", -1))
            except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
                container.kill()
                return None

    def remove(self, container_id: str) -> None:
        with engine_errors("removing a container"), contextlib.suppress(docker.errors.NotFound):
            self.client.containers.get(container_id).remove(force=True)

    def stop(self, container_id: str, timeout: float) -> int | None:
        with engine_errors("stopping a container"):
            try:
                container = self.client.containers.get(container_id)
                container.stop(timeout=int(timeout))
                return int(container.wait(timeout=30).get("StatusCode", -1))
            except docker.errors.NotFound:
                return None

    def kill(self, container_id: str) -> None:
        with engine_errors("killing a container"), contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            self.client.containers.get(container_id).kill()  # APIError: it is not running, which is fine

    def state(self, container_id: str) -> ContainerState:
        with engine_errors("reading a container's state"):
            try:
                attrs = self.client.api.inspect_container(container_id)["State"]
            except docker.errors.NotFound:
                return ContainerState("gone")
        status = attrs.get("Status", "exited")
        return ContainerState(
            status if status in ("created", "running") else "exited", attrs.get("ExitCode"), bool(attrs.get("OOMKilled")),
        )

    def exec(self, container_id: str, argv: list[str], *, user: str, workdir: str, timeout: float, limit: int) -> ExecResult:
        started = time.monotonic()
        with engine_errors("running a command in the app container"):
            exec_id = self.client.api.exec_create(
                container_id, ["timeout", "-k", "2", str(int(timeout)), *argv], user=user, workdir=workdir,
            )["Id"]
            tail = bytearray()
            for chunk in self.client.api.exec_start(exec_id, stream=True):
                tail += chunk
                if len(tail) > 2 * limit:
                    del tail[: len(tail) - limit]
            code = self.client.api.exec_inspect(exec_id).get("ExitCode")
        text = bytes(tail[-limit:]).decode("utf-8", errors="replace")
        timed_out = code == 124 or (code == 137 and time.monotonic() - started >= timeout)
        return ExecResult(exit_code=code if code is not None else -1, output=text, timed_out=timed_out)

    def copy_out(self, container_id: str, path: str, dest: Path, limit: int) -> Path:
        with engine_errors("copying a file out of the app container"):
            container = self.client.containers.get(container_id)
            return copy_file_out(container, path, dest, limit)

    def logs(self, container_id: str, limit: int) -> str:
        with engine_errors("reading a container's output"):
            try:
                return log_tail(self.client.containers.get(container_id), limit)
            except docker.errors.NotFound:
                return ""

    def containers_of(self, submission_id: str, role: str | None = None) -> list[LabelledContainer]:
        labels = [f"{SUBMISSION_LABEL}={submission_id}", *([f"{ROLE_LABEL}={role}"] if role else [])]
        with engine_errors("listing the job's containers"):
            found = self.client.containers.list(all=True, filters={"label": labels})
        return [LabelledContainer(c.id, c.labels.get(ROLE_LABEL, ""), c.labels.get(LANE_LABEL)) for c in found]

    def oom_kills(self, submission_id: str, since: float) -> int:
        with engine_errors("reading the engine's memory events"):
            return oom_kills(self.client, submission_id, since)

    def answers_http(self, socket_path: Path, path: str, timeout: float, *, proxied: bool = False) -> bool:
        try:
            response = unix_session(socket_path).get(f"{BASE_URL}{path}", timeout=timeout, allow_redirects=False, stream=True)
            response.close()
            return not (proxied and response.status_code in PROXY_NOT_READY)
        except Exception:  # no answer yet, whatever the reason; the caller looks at the container
            return False

    def remove_submission(self, submission_id: str) -> list[str]:
        with engine_errors("removing the job's containers"):
            return remove_submission_resources(self.client, submission_id)
