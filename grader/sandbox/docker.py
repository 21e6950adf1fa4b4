"""The Docker adapter: connecting, labelling, cleaning up and reading files back safely."""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
from docker.models.containers import Container

from grader.errors import InfraError
from grader.settings import Settings

JOB_LABEL = "grader.job"
ROLE_LABEL = "grader.role"
KIND_LABEL = "grader.kind"
OWNER_LABEL = "grader.owner"
LANE_LABEL = "grader.lane"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks; None when it is gone or a zombie (dead, not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def current_owner() -> str:
    """This process, as `pid:start-time`, so a reused PID is not mistaken for the owner."""
    pid = os.getpid()
    return f"{pid}:{_start_time(pid)}"


def owner_alive(owner: str) -> bool:
    pid, _, started = owner.partition(":")
    return pid.isdigit() and started != "" and _start_time(int(pid)) == started


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


def job_labels(job_id: str, role: str, owner: str | None = None, lane: str | None = None) -> dict[str, str]:
    return {JOB_LABEL: job_id, ROLE_LABEL: role, OWNER_LABEL: owner or current_owner(), **({LANE_LABEL: lane} if lane else {})}


@contextlib.contextmanager
def engine_errors(action: str) -> Iterator[None]:
    """Turn the engine's own failures into InfraError, the retried kind."""
    try:
        yield
    except docker.errors.ImageNotFound as exc:
        raise InfraError(f"{action}: image missing ({exc.explanation}); run `grader images build`") from None
    except (docker.errors.APIError, docker.errors.DockerException, ConnectionError) as exc:
        raise InfraError(f"{action}: the Docker engine failed: {exc}") from None


def remove_job_resources(client: docker.DockerClient, job_id: str) -> list[str]:
    """Remove every container, volume, network and image labelled with the job; return what went."""
    selector = {"label": f"{JOB_LABEL}={job_id}"}
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


def oom_kills(client: docker.DockerClient, job_id: str, since: float) -> int:
    """How many times the kernel killed a process of the job's containers for memory since `since`.

    Docker's `State.OOMKilled` is set only when the container itself dies; a Gunicorn worker killed
    inside a running container shows only as an `oom` event. `until` is now, to the microsecond: the
    engine streams events until then, so a whole second ahead would cost up to a second of waiting.
    """
    try:
        events = client.events(
            since=int(since), until=f"{time.time():.6f}", decode=True,
            filters={"type": "container", "event": "oom", "label": f"{JOB_LABEL}={job_id}"},
        )
        return sum(1 for _ in events)
    except docker.errors.DockerException:
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
