"""An in-memory Sandbox for unit tests: containers, volumes and images as records, no engine.

An app container "boots" when its launch command serves (unless `boot_fails` says otherwise); `exec`
answers with `on_exec`. With `http` set, each relay serves that function over its real unix socket, so a
real pytest process with the harness plugin can talk HTTP to the "app": the whole pipeline runs in a unit
test. `down()` makes every later call fail as an engine that went away does.
"""

from __future__ import annotations

import http.server
import itertools
import json
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from grader.errors import InfraError
from grader.sandbox import ContainerSpec, ContainerState, ExecResult, LabelledContainer, layers_digest

HttpApp = Callable[[str, str], tuple[int, str]]
"""(method, path) -> (status, body) of the fake app."""


@dataclass
class FakeContainer:
    id: str
    spec: ContainerSpec
    status: str = "running"
    exit_code: int | None = None
    logs: str = ""
    serves: bool = False


@dataclass
class FakeSandbox:
    """Records every call in `calls`; `containers`, `volumes` and `images` are what exists now."""

    images: dict[str, str] = field(
        default_factory=lambda: {"grader-base:bookworm": "sha256:base", "grader-relay:latest": "sha256:relay"}
    )
    boot_fails: Callable[[ContainerSpec], str | None] = lambda spec: None
    """A spec -> the app's output when its boot must fail (it exits with code 3), else None."""
    on_exec: Callable[[list[str]], ExecResult] = lambda argv: ExecResult(0, "", False)
    on_start: Callable[[FakeContainer], None] = lambda container: None
    """Called with each container just started, to give it output or another status (e.g. a tests container's)."""
    http: HttpApp | None = None
    containers: dict[str, FakeContainer] = field(default_factory=dict)
    volumes: dict[str, str] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    oom: int = 0
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _servers: dict[str, socketserver.BaseServer] = field(default_factory=dict)
    _down: bool = False

    def down(self) -> None:
        self._down = True

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self._down:
            raise InfraError(f"{name}: the Docker engine failed or went away: Connection refused")

    def ping(self) -> None:
        self._call("ping")

    def image_id(self, name: str) -> str | None:
        self._call("image_id")
        return self.images.get(name)

    def image_digest(self, name: str) -> str | None:
        self._call("image_digest")
        image = self.images.get(name)
        return None if image is None else layers_digest([image, f"{image}-files"])  # content, not its id

    def build_image(self, context: IO[bytes], tag: str, submission_id: str, shared: bool = False) -> str:
        self._call("build_image")
        self.images[tag] = f"sha256:{tag}" if shared else f"sha256:{submission_id}"
        return self.images[tag]

    def commit(self, container_id: str, repository: str, tag: str, labels: dict[str, str]) -> str:
        self._call("commit")
        self.images[f"{repository}:{tag}"] = f"sha256:{tag}"
        return self.images[f"{repository}:{tag}"]

    def create_volume(self, submission_id: str, owner: str, size: str, uid: int) -> str:
        self._call("create_volume")
        name = f"grader-{submission_id}-data-{next(self._ids)}"
        self.volumes[name] = submission_id
        return name

    def remove_volume(self, name: str) -> None:
        self._call("remove_volume")
        self.volumes.pop(name, None)

    def start(self, spec: ContainerSpec) -> str:
        self._call(f"start {spec.role}")
        container = FakeContainer(f"{spec.role}-{next(self._ids)}", spec)
        if spec.role == "app":
            launch = json.loads(spec.command[-1]) if spec.command[-2:-1] == ["launch"] else {}
            container.serves = bool(launch.get("serve"))
            failure = self.boot_fails(spec) if container.serves else None
            if failure is not None:
                container.status, container.exit_code, container.logs, container.serves = "exited", 3, failure, False
        elif spec.role == "relay" and self.http is not None:
            self._serve_http(container.id, Path(spec.writable_binds[0][0]) / "app.sock")
        self.containers[container.id] = container
        self.on_start(container)
        return container.id

    def wait(self, container_id: str, timeout: float) -> int | None:
        self._call("wait")
        self.containers[container_id].status = "exited"
        self.containers[container_id].exit_code = 0
        return 0

    def stop(self, container_id: str, timeout: float) -> int | None:
        self._call("stop")
        container = self.containers.get(container_id)
        if container is None:
            return None
        container.status, container.exit_code = "exited", 0
        return 0

    def kill(self, container_id: str) -> None:
        self._call("kill")
        if container_id in self.containers:
            self.containers[container_id].status, self.containers[container_id].exit_code = "exited", 137

    def remove(self, container_id: str) -> None:
        self._call("remove")
        self.containers.pop(container_id, None)
        server = self._servers.pop(container_id, None)
        if server is not None:
            server.shutdown()
            server.server_close()

    def state(self, container_id: str) -> ContainerState:
        self._call("state")
        container = self.containers.get(container_id)
        if container is None:
            return ContainerState("gone")
        return ContainerState(container.status, container.exit_code)  # type: ignore[arg-type]

    def exec(self, container_id: str, argv: list[str], *, user: str, workdir: str, timeout: float, limit: int) -> ExecResult:
        self._call("exec")
        return self.on_exec(argv)

    def copy_out(self, container_id: str, path: str, dest: Path, limit: int) -> Path:
        self._call("copy_out")
        raise FileNotFoundError(f"{path} does not exist in the app container")

    def logs(self, container_id: str, limit: int) -> str:
        self._call("logs")
        container = self.containers.get(container_id)
        return container.logs[-limit:] if container else ""

    def containers_of(self, submission_id: str, role: str | None = None) -> list[LabelledContainer]:
        self._call("containers_of")
        return [
            LabelledContainer(c.id, c.spec.role, c.spec.lane) for c in self.containers.values()
            if c.spec.submission_id == submission_id and role in (None, c.spec.role)
        ]

    def oom_kills(self, submission_id: str, since: float) -> int:
        self._call("oom_kills")
        return self.oom

    def answers_http(self, socket_path: Path, path: str, timeout: float, *, proxied: bool = False) -> bool:
        self._call("answers_http")
        relays = {
            c.id for c in self.containers.values()
            if c.spec.role == "relay" and Path(c.spec.writable_binds[0][0]) == socket_path.parent
        }
        return any(
            c.spec.role == "app" and c.status == "running" and c.serves and c.spec.network.removeprefix("container:") in relays
            for c in self.containers.values()
        )

    def remove_submission(self, submission_id: str) -> list[str]:
        self._call("remove_submission")
        removed = [f"container {c.id}" for c in list(self.containers.values()) if c.spec.submission_id == submission_id]
        for name in removed:
            self.remove(name.removeprefix("container "))
        gone = [name for name, job in self.volumes.items() if job == submission_id]
        for name in gone:
            del self.volumes[name]
        return removed + [f"volume {name}" for name in gone]

    def _serve_http(self, relay_id: str, path: Path) -> None:
        app: HttpApp | None = self.http
        assert app is not None
        respond: HttpApp = app

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
                status, body = respond("GET", self.path)
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def address_string(self) -> str:
                return "fake-relay"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        path.unlink(missing_ok=True)
        server = Server(str(path), Handler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self._servers[relay_id] = server
