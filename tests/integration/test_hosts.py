"""Several grading hosts on one real Redis: a worker refuses SQLite once another host's workers share the queue."""

from __future__ import annotations

import pytest

from grader.errors import InfraError
from grader.queue.broker import connect_redis, embedded_url
from grader.queue.hosts import other_hosts, refuse_sqlite_across_hosts
from grader.queue.watchdog import heartbeat_key
from grader.settings import Settings
from tests.integration.test_broker import shutdown


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
