"""Several grading hosts on one real Redis: a worker refuses SQLite once another host's workers share the queue."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import redis

from grader.errors import InfraError
from grader.queue.broker import connect_redis, embedded_url
from grader.queue.hosts import heartbeat_key, other_hosts, refuse_sqlite_across_hosts
from grader.settings import Settings
from tests.integration.conftest import RedisServer
from tests.integration.test_broker import shutdown
from tests.integration.test_queue import QueueRig


def test_sqlite_is_refused_once_another_host_shares_the_redis(settings: Settings) -> None:
    connection = connect_redis(settings)
    try:
        refuse_sqlite_across_hosts(settings, connection, hostname="host-a")  # alone
        connection.set(heartbeat_key("host-a/101:5"), "1", ex=20)
        refuse_sqlite_across_hosts(settings, connection, hostname="host-a")  # its own workers only
        connection.set(heartbeat_key("host-b/7:9"), "1", ex=20)
        assert other_hosts(connection, "host-a") == {"host-b"}
        with pytest.raises(InfraError, match=r"other hosts \(host-b\).*SQLite.*DATABASE_URL to a PostgreSQL"):
            refuse_sqlite_across_hosts(settings, connection, hostname="host-a")
        on_postgres = settings.replace(database_url="postgresql+psycopg://grader:pw@127.0.0.1:1/grader")
        refuse_sqlite_across_hosts(on_postgres, connection, hostname="host-a")
        connection.delete(heartbeat_key("host-b/7:9"))  # host-b's heartbeat expired: alone again
        refuse_sqlite_across_hosts(settings, connection, hostname="host-a")
    finally:
        shutdown(embedded_url(settings))


def test_a_running_worker_stops_when_another_host_joins_later(settings: Settings, short_tmp: Path,
                                                              redis_server: RedisServer) -> None:
    """`grader worker -c 2` on SQLite starts alone; another host's worker then heartbeats on its Redis: the watchdog
    refuses, both processes end, none is started again, and the command exits 3 saying what to set."""
    rig = QueueRig(settings, short_tmp, redis_server)
    process = rig.start_worker("--concurrency", "2")
    connection = redis.Redis.from_url(redis_server.url)
    own = heartbeat_key(f"{socket.gethostname()}/*")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(connection.scan_iter(match=own))) < 2:
        assert process.poll() is None, rig.logs()
        time.sleep(0.2)
    assert len(list(connection.scan_iter(match=own))) == 2, rig.logs()
    connection.set(heartbeat_key("joined-later/7:9"), "1", ex=120)
    assert process.wait(timeout=60) == 3, rig.logs()
    logs = rig.logs()
    assert "other hosts (joined-later)" in logs and "DATABASE_URL to a PostgreSQL" in logs
    assert "starting another" not in logs, "a refused worker is not started again"
    assert list(connection.scan_iter(match=own)) == [], "the stopped workers took their heartbeats away"
