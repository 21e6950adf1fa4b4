"""The sandbox seam: everything the grader asks of a container engine, in one protocol.

`DockerSandbox` (grader/sandbox/docker.py) is the implementation; `FakeSandbox` (grader/sandbox/fake.py) keeps
containers in memory so the pipeline, the pod's life and the lanes run in unit tests without an engine. Above
this seam nothing imports the Docker SDK: the stages and the pod speak of specs, states and results.
A failure of the engine itself is an `InfraError`; what the candidate's code did (exited, was killed, printed)
is a result.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal, Protocol

Limits = Literal["candidate", "build", "relay", "services"]


def layers_digest(layers: list[str]) -> str | None:
    """An image's content digest from its layers' (the engine's `RootFS.Layers`): one layer's own digest, which is
    the sha256 of the tarball it was imported from; for several, the sha256 of their list."""
    if not layers:
        return None
    if len(layers) == 1:
        return layers[0]
    return "sha256:" + hashlib.sha256("\n".join(layers).encode()).hexdigest()


@dataclass(frozen=True)
class ContainerSpec:
    """A container to start. `limits` picks the hardening: the candidate's (app), a build's, the relay's, or the
    services container's (ours, but it serves the candidate's code)."""

    image: str
    command: list[str]
    submission_id: str
    role: str
    owner: str
    user: str
    network: str = "none"
    """`none`, `bridge` (builds only) or `container:<id>` (the relay's namespace)."""
    lane: str | None = None
    workdir: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    volumes: dict[str, str] = field(default_factory=dict)
    binds: tuple[tuple[str, str], ...] = ()
    """(host path, container path) pairs, mounted read-only."""
    writable_binds: tuple[tuple[str, str], ...] = ()
    limits: Limits = "candidate"


@dataclass(frozen=True)
class ContainerState:
    """What the engine says of a container: `gone` when it no longer exists."""

    status: Literal["created", "running", "exited", "gone"]
    exit_code: int | None = None
    oom_killed: bool = False

    @property
    def running(self) -> bool:
        return self.status == "running"


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: str
    timed_out: bool


@dataclass(frozen=True)
class LabelledContainer:
    id: str
    role: str
    lane: str | None


class Sandbox(Protocol):
    """Build, start, stop and inspect the containers of grading jobs; each carries its job's label."""

    def ping(self) -> None:
        """InfraError saying how to start the engine when it does not answer."""

    def image_id(self, name: str) -> str | None: ...

    def image_digest(self, name: str) -> str | None:
        """The image's content: sha256 over its layers' digests, the same on any host that built the same files
        (the image id is not, as it holds the build's time); None when there is no such image."""

    def build_image(self, context: IO[bytes], tag: str, submission_id: str, shared: bool = False) -> str:
        """Build an image from a tar context (no network); its id. A `shared` image (one dependency layer's
        runtime) is labelled by kind, not by the job, so the job's cleanup never removes it."""

    def commit(self, container_id: str, repository: str, tag: str, labels: dict[str, str]) -> str: ...

    def create_volume(self, submission_id: str, owner: str, size: str, uid: int) -> str:
        """A tmpfs volume of bounded size owned by `uid`; its name."""

    def remove_volume(self, name: str) -> None: ...

    def start(self, spec: ContainerSpec) -> str:
        """Create and start a container; its id."""

    def wait(self, container_id: str, timeout: float) -> int | None:
        """The exit code once it exits; None (after killing it) at `timeout`."""

    def remove(self, container_id: str) -> None:
        """Force-remove a container; one that is already gone is fine."""

    def stop(self, container_id: str, timeout: float) -> int | None:
        """SIGTERM to its main process, SIGKILL after `timeout` seconds; the exit code (None if already gone)."""

    def kill(self, container_id: str) -> None:
        """SIGKILL every process of the container at once; one that is not running is fine."""

    def state(self, container_id: str) -> ContainerState: ...

    def exec(self, container_id: str, argv: list[str], *, user: str, workdir: str, timeout: float, limit: int) -> ExecResult:
        """Run a command in a running container, killed after `timeout`; the last `limit` bytes of its output."""

    def copy_out(self, container_id: str, path: str, dest: Path, limit: int) -> Path:
        """One regular file out of a container; FileNotFoundError, or ValueError for links and oversize files."""

    def logs(self, container_id: str, limit: int) -> str:
        """The last `limit` bytes of a container's output, decoded leniently."""

    def containers_of(self, submission_id: str, role: str | None = None) -> list[LabelledContainer]: ...

    def oom_kills(self, submission_id: str, since: float) -> int:
        """Processes of the job's containers the kernel killed for memory since `since` (Unix time)."""

    def answers_http(self, socket_path: Path, path: str, timeout: float, *, proxied: bool = False) -> bool:
        """Whether anything answers an HTTP GET of `path` through the relay's unix socket; with `proxied`, the
        proxy's own 502, 503 and 504 (nothing behind it answers yet) do not count."""

    def remove_submission(self, submission_id: str) -> list[str]:
        """Remove every container, volume and image labelled with the job; what went."""

