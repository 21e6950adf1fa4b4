"""Redis for the queue: the embedded redis-server is started once, shared, persistent; errors say what to do."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from grader.queue.broker import BrokerUnavailable, connect_redis, embedded_url, sentinel_address
from grader.settings import Settings
from tests.loopback import free_port


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


def test_sentinel_url_reaches_the_master_sentinel_names(short_tmp):
    """`REDIS_URL=redis+sentinel://...`: a real redis-server and a real Sentinel on loopback; the queue's connection
    is the master's, and a Sentinel that knows no such service is a clear BrokerUnavailable."""
    master_port, sentinel_port = free_port(), free_port()
    (short_tmp / "sentinel.conf").write_text(
        f"port {sentinel_port}\nbind 127.0.0.1\nsentinel monitor jobs 127.0.0.1 {master_port} 1\n"
    )
    servers = [
        subprocess.Popen(["redis-server", "--port", str(master_port), "--bind", "127.0.0.1", "--save", "",
                          "--dir", str(short_tmp)], stdout=subprocess.DEVNULL),
        subprocess.Popen(["redis-server", str(short_tmp / "sentinel.conf"), "--sentinel"], stdout=subprocess.DEVNULL),
    ]
    try:
        url = f"redis+sentinel://127.0.0.1:{sentinel_port}/jobs/2"
        assert sentinel_address(url) == ([("127.0.0.1", sentinel_port)], "jobs", 2, None)
        connection = None
        for _ in range(50):
            try:
                connection = connect_redis(Settings(data_dir=short_tmp / "var", redis_url=url))
                break
            except BrokerUnavailable:
                time.sleep(0.1)
        assert connection is not None, "the Sentinel never named the master"
        connection.set("probe", "1")
        direct = redis.Redis(host="127.0.0.1", port=master_port, db=2)
        assert direct.get("probe") == b"1", "written through Sentinel to the master's db 2"
        wrong = f"redis+sentinel://127.0.0.1:{sentinel_port}/nosuch"
        with pytest.raises(BrokerUnavailable, match="not reachable"):
            connect_redis(Settings(data_dir=short_tmp / "var", redis_url=wrong))
    finally:
        for server in servers:
            server.kill()
            server.wait(timeout=10)


def test_sentinel_url_names_sentinels_service_db_and_password():
    assert sentinel_address("redis+sentinel://:s%40cret@a.example:26380,b.example/grading") == (
        [("a.example", 26380), ("b.example", 26379)], "grading", 0, "s@cret",
    )
    with pytest.raises(ValueError, match="names its sentinels and the master's service"):
        sentinel_address("redis+sentinel://a.example:26379/")
