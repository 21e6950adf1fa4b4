"""Several grading hosts on one Redis: each publishes its workers' heartbeats there (grader/queue/watchdog.py), so a
worker can tell that others share its queue, and refuse a database only it can reach: when it starts, and at each
of its watchdog's sweeps, for a host that joins later."""

from __future__ import annotations

import socket

import redis

from grader.errors import InfraError
from grader.settings import Settings


def heartbeat_key(owner: str) -> str:
    """The Redis key of a worker process's heartbeat; its owner is `host/pid:start`."""
    return f"grader:worker:{owner}"


def other_hosts(connection: redis.Redis, hostname: str) -> set[str]:
    """Hosts, other than `hostname`, whose grading workers have a live heartbeat on this Redis."""
    prefix = heartbeat_key("")
    hosts = set()
    for key in connection.scan_iter(match=f"{prefix}*", count=500):
        owner = (key.decode() if isinstance(key, bytes) else str(key)).removeprefix(prefix)
        host = owner.rpartition("/")[0]
        if host and host != hostname:
            hosts.add(host)
    return hosts


def refuse_sqlite_across_hosts(settings: Settings, connection: redis.Redis, hostname: str | None = None) -> None:
    """SQLite is a file on one host: with workers of other hosts on the same Redis, every host needs PostgreSQL."""
    if not settings.database_url.startswith("sqlite"):
        return
    others = other_hosts(connection, hostname or socket.gethostname())
    if others:
        raise InfraError(
            f"grading workers on other hosts ({', '.join(sorted(others))}) share this Redis, but the grader's database "
            "is SQLite, a file on this host only; set DATABASE_URL to a PostgreSQL server that every host reaches "
            "(README: Running on several machines)"
        )
