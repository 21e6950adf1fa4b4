"""The relay: our trusted socat container that owns a pod's network namespace (loopback only) and forwards
a unix socket in a host folder, which only it and the grading process see, to the app's port."""

from __future__ import annotations

from pathlib import Path

from grader.errors import InfraError
from grader.sandbox import ContainerSpec, Sandbox
from grader.settings import Settings

SOCKET_NAME = "app.sock"


def socket_dir(settings: Settings, submission_id: str, name: str) -> Path:
    """The host folder of one relay's socket (mode 700), under the job's sockets folder."""
    folder = settings.paths.sockets_dir / submission_id / name
    if len(str(folder / SOCKET_NAME)) > 100:
        raise InfraError(f"the socket path under {settings.paths.sockets_dir} is too long for a unix socket; shorten data_dir")
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    return folder


def start_relay(
    sandbox: Sandbox, settings: Settings, *, submission_id: str, owner: str, folder: Path, port: int, lane: str,
    socket_name: str = SOCKET_NAME, network: str = "none", role: str = "relay",
) -> str:
    """Start the relay with no network but its own loopback; the app container joins its namespace. With
    `network="container:<relay>"` it is a further forward into an existing pod (the grader's way to PostgreSQL)."""
    return sandbox.start(ContainerSpec(
        image=settings.sandbox.relay_image, submission_id=submission_id, role=role, owner=owner, user="0:0", lane=lane,
        command=[f"UNIX-LISTEN:/run/grader/{socket_name},fork,unlink-early,mode=600,backlog=512", f"TCP:127.0.0.1:{port}"],
        writable_binds=((str(folder), "/run/grader"),), network=network, limits="relay",
    ))
