"""A pod's services: PostgreSQL 15, Redis 7 and Nginx in one trusted container that joins the relay's network
namespace, so the app and the worker can be replaced while the services stay. One set per lane: no two lanes or
grades ever share a database or a broker.

The container runs `grader-services` (grader/sandbox/services_files/) as `postgres` with a read-only root, its
files in a tmpfs. Readiness is asked of each service from inside (`pg_isready`, Redis `PING`, a TCP connect to
Nginx) and timed. Each app instance gets a new database owned by a new role with a random password, and an
emptied Redis (`fresh_state`); the grader itself reaches PostgreSQL as its superuser (random password) through a
second socat forward whose unix socket is named as libpq expects (`.s.PGSQL.5432`).
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from grader.errors import InfraError
from grader.models import Pod, ServiceDatabase
from grader.sandbox import ContainerSpec, Sandbox
from grader.sandbox.relay import socket_dir, start_relay
from grader.settings import Settings

SERVICES = ("postgresql", "redis", "nginx")
PG_PORT, REDIS_PORT = 5432, 6379
PG_SOCKET = f".s.PGSQL.{PG_PORT}"
_USER = "postgres"
_PSQL = ["psql", "-h", "/tmp", "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qAt"]
_READY = {
    "postgresql": ["pg_isready", "-h", "127.0.0.1", "-p", str(PG_PORT), "-q"],
    "redis": ["redis-cli", "-h", "127.0.0.1", "-p", str(REDIS_PORT), "ping"],
}


def start_services(
    sandbox: Sandbox, settings: Settings, *, job: str, owner: str, lane: str, relay: str, services: list[str],
    proxy_port: int, app_port: int,
) -> str:
    """Start the services container in the relay's namespace; the caller waits for it (`wait_for_services`)."""
    unknown = sorted(set(services) - set(SERVICES))
    if unknown:
        raise InfraError(f"unknown services {unknown}; the services image has {list(SERVICES)}")
    return sandbox.start(ContainerSpec(
        image=settings.sandbox.services_image, command=list(services), submission_id=job, role="services", owner=owner,
        user=_USER, lane=lane, network=f"container:{relay}", limits="services",
        environment={"GRADER_PROXY_PORT": str(proxy_port), "GRADER_APP_PORT": str(app_port)},
    ))


def start_database_forward(sandbox: Sandbox, settings: Settings, *, job: str, owner: str, lane: str, relay: str, name: str) -> Path:
    """A socat forward from a host folder of ours to PostgreSQL's port in the pod: the grader's SQL goes through it.
    Returns the folder, which libpq takes as its `host`."""
    folder = socket_dir(settings, job, name)
    start_relay(
        sandbox, settings, submission_id=job, owner=owner, folder=folder, port=PG_PORT, lane=lane,
        socket_name=PG_SOCKET, network=f"container:{relay}", role="database-forward",
    )
    return folder


def wait_for_services(
    sandbox: Sandbox, container: str, services: list[str], proxy_port: int, settings: Settings,
) -> dict[str, float]:
    """Seconds until each service answered, from now; InfraError with the container's output if one never does.

    The services are ours, so a service that does not come up is our failure, never the candidate's."""
    started = time.monotonic()
    deadline = started + settings.timeouts.boot_s
    checks = {name: _READY.get(name, ["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{proxy_port}"]) for name in services}
    ready: dict[str, float] = {}
    while True:
        for name in [name for name in checks if name not in ready]:
            if sandbox.exec(container, checks[name], user=_USER, workdir="/tmp", timeout=5, limit=4096).exit_code == 0:
                ready[name] = round(time.monotonic() - started, 3)
        if len(ready) == len(checks):
            return ready
        state = sandbox.state(container)
        if not state.running or time.monotonic() > deadline:
            waiting = sorted(set(checks) - set(ready))
            raise InfraError(
                f"the pod's services {waiting} did not come up ({state.status}); their output: "
                f"{sandbox.logs(container, 2000)[-1500:]}"
            )
        time.sleep(0.1)


def set_superuser_password(sandbox: Sandbox, container: str) -> str:
    """A random password for `postgres` over TCP (the local socket stays trusted, and only the grader can exec)."""
    password = secrets.token_hex(24)
    _psql(sandbox, container, f"ALTER ROLE postgres PASSWORD '{password}'")
    return password


def fresh_state(sandbox: Sandbox, pod: Pod) -> ServiceDatabase | None:
    """A new database owned by a new role with a random password, the old ones dropped; Redis emptied."""
    database = None
    if "postgresql" in pod.services:
        old = pod.database
        name = f"app_{secrets.token_hex(6)}"
        database = ServiceDatabase(name=name, role=name, password=secrets.token_hex(18))
        statements = [f'DROP DATABASE IF EXISTS "{old.name}" WITH (FORCE)', f'DROP ROLE IF EXISTS "{old.role}"'] if old else []
        statements += [
            f"CREATE ROLE \"{database.role}\" LOGIN PASSWORD '{database.password}'",
            f'CREATE DATABASE "{database.name}" OWNER "{database.role}"',
        ]
        _psql(sandbox, pod.services_container, *statements)
    if "redis" in pod.services:
        result = sandbox.exec(pod.services_container, ["redis-cli", "-h", "127.0.0.1", "FLUSHALL"], user=_USER,
                              workdir="/tmp", timeout=10, limit=4096)
        if result.exit_code != 0 or "OK" not in result.output:
            raise InfraError(f"Redis could not be emptied: {result.output[-300:]}")
    return database


def service_environment(pod: Pod) -> dict[str, str]:
    """What the app and its worker are told of the services: the URLs of the contracts."""
    environment: dict[str, str] = {}
    if pod.database is not None:
        db = pod.database
        environment["DATABASE_URL"] = f"postgresql://{db.role}:{db.password}@127.0.0.1:{PG_PORT}/{db.name}"
    if "redis" in pod.services:
        environment["REDIS_URL"] = environment["CELERY_BROKER_URL"] = f"redis://127.0.0.1:{REDIS_PORT}/0"
    return environment


def dump_database(sandbox: Sandbox, pod: Pod, limit: int) -> str:
    """The app's database as `pg_dump` writes it (plain SQL), for looking for plaintext passwords."""
    if pod.database is None:
        raise InfraError("this pod has no PostgreSQL database")
    result = sandbox.exec(pod.services_container, ["pg_dump", "-h", "/tmp", "-U", "postgres", pod.database.name],
                          user=_USER, workdir="/tmp", timeout=60, limit=limit)
    if result.exit_code != 0:
        raise InfraError(f"pg_dump failed: {result.output[-300:]}")
    return result.output


def terminate_sessions(sandbox: Sandbox, pod: Pod, application_name: str) -> int:
    """End the database sessions of one client (a killed worker's): what remains of a dead client, ended at once."""
    if not application_name.replace("-", "").isalnum():
        raise InfraError(f"not a session name of ours: {application_name!r}")
    output = _psql(
        sandbox, pod.services_container,
        f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '{application_name}'",
    )
    return int(output.strip().splitlines()[-1] or 0)


def _psql(sandbox: Sandbox, container: str, *statements: str) -> str:
    argv = [*_PSQL, *(part for statement in statements for part in ("-c", statement))]
    result = sandbox.exec(container, argv, user=_USER, workdir="/tmp", timeout=30, limit=8192)
    if result.exit_code != 0:
        raise InfraError(f"the pod's PostgreSQL refused the grader's SQL: {result.output[-400:]}")
    return result.output
