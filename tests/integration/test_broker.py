"""Redis for the queue: the embedded redis-server is started once, shared, persistent; errors say what to do."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from grader.queue.broker import BrokerUnavailable, connect_redis, embedded_url
from grader.settings import Settings


def shutdown(url: str) -> None:
    """SHUTDOWN (which writes the append-only file), without the client's reconnection retries."""
    try:
        redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0)).shutdown()
    except redis.RedisError:
        pass


@pytest.fixture
def embedded(settings: Settings) -> Iterator[Settings]:
    yield settings
    shutdown(embedded_url(settings))


def _pid(settings: Settings) -> str:
    return (settings.paths.redis_dir / "redis.pid").read_text().strip()


def test_embedded_redis_is_started_once_and_shared(embedded):
    """Without REDIS_URL the first connection starts redis-server on a socket; the second reuses it."""
    first = connect_redis(embedded)
    pid = _pid(embedded)
    second = connect_redis(embedded)
    assert second.ping() and _pid(embedded) == pid
    info = first.info("persistence")
    assert info["aof_enabled"] == 1
    assert first.config_get("port")["port"] == "0"
    assert (embedded.paths.redis_dir / "redis.sock").is_socket()
    processes = subprocess.run(["pgrep", "-f", str(embedded.paths.redis_dir / "redis.sock")], capture_output=True, text=True)
    assert processes.stdout.split() == [pid]


def test_embedded_redis_keeps_data_across_a_restart(embedded):
    """Data written before a shutdown is there after the next command starts the server again (AOF)."""
    connect_redis(embedded).set("grader:test", "kept")
    shutdown(embedded_url(embedded))
    assert connect_redis(embedded).get("grader:test") == b"kept"


@pytest.mark.parametrize("url", ["unix:///nonexistent.sock", "redis://127.0.0.1:1"])
def test_unreachable_redis_url_says_what_to_do(url):
    """A REDIS_URL nobody answers on is a BrokerUnavailable naming the URL and the fix."""
    with pytest.raises(BrokerUnavailable) as caught:
        connect_redis(Settings(REDIS_URL=url))
    assert f"Redis at {url} is not reachable" in caught.value.reason
    assert "start it or unset REDIS_URL" in caught.value.reason
