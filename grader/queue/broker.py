"""Redis, which carries the jobs: the configured server, or one private embedded `redis-server`.

Without `REDIS_URL` the commands share one redis-server in the data directory: append-only
persistence (so a restart loses no job), no TCP port, a unix socket, daemonized with a pidfile. The
first command that finds no answer on the socket starts it, under a file lock so two do not race;
the others reuse it. Redis only carries jobs: the database (grader.db.store) is the truth, and a job
Redis lost is enqueued again by a worker's watchdog. With `REDIS_URL=redis+sentinel://...` the master is the one
Redis Sentinel names, found again after a failover.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from urllib.parse import unquote, urlsplit

import redis
from redis.sentinel import Sentinel
from rq import Queue, Retry
from rq.job import Job

from grader.errors import InfraError
from grader.filelock import exclusive
from grader.settings import Settings

QUEUE_NAME = "grading"
JOB_FUNCTION = "grader.queue.jobs.grade_job"
_SOCKET = "redis.sock"


class BrokerUnavailable(InfraError):
    """Redis cannot be reached or started; the CLI exits 3 with this reason."""


_TIMEOUTS = {"socket_connect_timeout": 2, "socket_timeout": 10, "health_check_interval": 30}
SENTINEL_SCHEME = "redis+sentinel"


def sentinel_address(url: str) -> tuple[list[tuple[str, int]], str, int, str | None]:
    """`redis+sentinel://[:password@]host[:port][,host[:port]...]/service[/db]`: (sentinels, service, db, password).

    Sentinel's own port (26379) when a host gives none; the password is the master's, and the sentinels' too."""
    parts = urlsplit(url)
    credentials, _, hosts = parts.netloc.rpartition("@")
    password = unquote(credentials.partition(":")[2]) or None if credentials else None
    sentinels = []
    for host in filter(None, hosts.split(",")):
        name, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
        sentinels.append((name, int(port or 26379)))
    path = [p for p in parts.path.split("/") if p]
    if not sentinels or not path:
        raise ValueError(f"a Sentinel URL names its sentinels and the master's service: {SENTINEL_SCHEME}://host:26379/mymaster")
    return sentinels, path[0], int(path[1]) if len(path) > 1 else 0, password


def _connect(url: str) -> redis.Redis:
    """A client of the URL: a plain Redis (`redis://`, `rediss://`, `unix://`), or the master Sentinel names."""
    if not url.startswith(f"{SENTINEL_SCHEME}://"):
        return redis.Redis.from_url(url, **_TIMEOUTS)
    sentinels, service, db, password = sentinel_address(url)
    sentinel = Sentinel(sentinels, sentinel_kwargs={"password": password, "socket_timeout": 2}, password=password)
    return sentinel.master_for(service, db=db, **_TIMEOUTS)


def _ping(url: str) -> redis.Redis:
    connection = _connect(url)
    connection.ping()
    return connection


def embedded_url(settings: Settings) -> str:
    return f"unix://{settings.paths.redis_dir / _SOCKET}"


def _start_embedded(settings: Settings) -> None:
    folder = settings.paths.redis_dir
    binary = shutil.which("redis-server")
    if binary is None:
        raise BrokerUnavailable(
            "redis-server is not installed (apt-get install redis-server, or `make setup`); or set REDIS_URL"
        )
    command = [
        binary, "--port", "0", "--unixsocket", str(folder / _SOCKET), "--unixsocketperm", "700",
        "--dir", str(folder), "--appendonly", "yes", "--appendfsync", "always", "--save", "",
        "--daemonize", "yes", "--pidfile", str(folder / "redis.pid"), "--logfile", str(folder / "redis.log"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise BrokerUnavailable(f"redis-server did not start: {(result.stdout + result.stderr).strip()[-500:]}")


def _embedded(settings: Settings) -> redis.Redis:
    """Reuse the private redis-server if its socket answers, else start it and wait for PING."""
    url = embedded_url(settings)
    if len(str(settings.paths.redis_dir / _SOCKET)) > 100:
        raise BrokerUnavailable(f"the socket path under {settings.paths.redis_dir} is too long; shorten data_dir")
    settings.paths.redis_dir.mkdir(parents=True, exist_ok=True)
    with exclusive(settings.paths.redis_dir / "start.lock"):
        try:
            return _ping(url)
        except redis.RedisError:
            pass
        _start_embedded(settings)
        deadline = time.monotonic() + settings.timeouts.redis_start_s
        while True:
            try:
                return _ping(url)
            except redis.RedisError as exc:
                if time.monotonic() > deadline:
                    raise BrokerUnavailable(
                        f"the embedded redis-server at {url} did not answer: {exc}; see {settings.paths.redis_dir / 'redis.log'}"
                    ) from None
                time.sleep(0.1)


def connect_redis(settings: Settings) -> redis.Redis:
    """A live connection to the configured Redis or to the embedded one, or BrokerUnavailable."""
    if settings.redis_url is None:
        return _embedded(settings)
    try:
        return _ping(settings.redis_url)
    except (redis.RedisError, ValueError) as exc:
        raise BrokerUnavailable(
            f"Redis at {settings.redis_url} is not reachable: {exc}; start it or unset REDIS_URL"
        ) from None


def redis_url(settings: Settings) -> str:
    """The URL to hand to worker processes, once connect_redis has made sure it answers."""
    return settings.redis_url or embedded_url(settings)


def grading_queue(connection: redis.Redis) -> Queue:
    """The one queue every worker listens on (RQ's dequeue is atomic for a single queue)."""
    return Queue(QUEUE_NAME, connection=connection)


def new_job_id(submission_id: str) -> str:
    """A fresh RQ job id per delivery; the record names the current one, so stale jobs are recognised."""
    return f"{submission_id}-{uuid.uuid4().hex[:8]}"


def enqueue_grading(queue: Queue, submission_id: str, job_id: str, settings: Settings) -> Job:
    """One grading job with the job timeout and the infra_error retries of `settings`."""
    intervals = settings.queue.retry_intervals_s
    return queue.enqueue(
        JOB_FUNCTION, submission_id,
        job_id=job_id,
        job_timeout=int(settings.timeouts.job_limit_s),
        retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
        result_ttl=7 * 24 * 3600,
        failure_ttl=7 * 24 * 3600,
        description=f"grade {submission_id}",
    )
