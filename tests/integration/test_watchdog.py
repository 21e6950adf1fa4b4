"""The watchdog: dead owners' gradings are re-enqueued once, with their leftovers killed and reaped."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from rq.job import Job

from grader.db.engine import open_store
from grader.db.schema import submissions
from grader.db.store import Store, utcnow
from grader.owner import process_alive
from grader.queue.broker import connect_redis, embedded_url, grading_queue
from grader.queue.watchdog import Watchdog, heartbeat_key
from grader.settings import Settings
from grader.storage import open_storage, read_stored
from tests.integration.test_broker import shutdown

HOST = "testhost"


class EmptyResources:
    def list(self, **kwargs: object) -> list[object]:
        return []


class FakeDocker:
    """An engine with nothing in it, which records that it was asked."""

    def __init__(self) -> None:
        self.containers = self.volumes = self.networks = self.images = EmptyResources()


@pytest.fixture
def connection(settings: Settings) -> Iterator[redis.Redis]:
    yield connect_redis(settings)
    shutdown(embedded_url(settings))


@pytest.fixture
def store(settings: Settings) -> Store:
    return open_store(settings)


def _start(pid: int) -> str:
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        return handle.read().rsplit(")", 1)[1].split()[19]


def _alive(pid: int) -> bool:
    try:
        return process_alive(f"{pid}:{_start(pid)}")
    except OSError:
        return False


def _dead_owner() -> str:
    process = subprocess.Popen(["sleep", "30"])
    owner = f"{HOST}/{process.pid}:{_start(process.pid)}"
    process.kill()
    process.wait()
    return owner


def _running(store: Store, owner: str, submission_id: str = "s-1") -> None:
    store.create(submission_id, source="file:///r", ref=None, assignment="tiny", submitter=None, job_id="j1")
    assert store.acquire(submission_id, "j1", owner, "t1")


def _watchdog(settings: Settings, store: Store, connection: redis.Redis, asked: list[str] | None = None) -> Watchdog:
    def client() -> FakeDocker:
        if asked is not None:
            asked.append("reap")
        return FakeDocker()

    return Watchdog(settings, store, connection, f"{HOST}/{os.getpid()}:{_start(os.getpid())}", docker_client=client)  # type: ignore[arg-type]


def test_dead_local_owner_is_requeued_once(settings, store, connection):
    """A running record whose owner process is gone goes back to queued with a new RQ job, reaped first."""
    _running(store, _dead_owner())
    asked: list[str] = []
    first, second = _watchdog(settings, store, connection, asked), _watchdog(settings, store, connection)
    assert first.recover_abandoned() == ["s-1"]
    assert second.recover_abandoned() == []
    record = store.get("s-1")
    assert record is not None and record.status.value == "queued" and record.job_id != "j1"
    assert "died during start" in (record.last_error or "")
    assert grading_queue(connection).job_ids == [record.job_id]
    assert Job.fetch(record.job_id, connection=connection).args == ("s-1",)  # type: ignore[arg-type]
    assert asked == ["reap"]


def test_live_owner_is_left_alone(settings, store, connection):
    """A grading whose owner runs (this very process) is not touched."""
    watchdog = _watchdog(settings, store, connection)
    _running(store, watchdog.owner)
    other = _watchdog(settings, store, connection)
    other.owner = f"{HOST}/1:0"
    assert other.recover_abandoned() == []


def test_remote_owner_is_judged_by_its_heartbeat(settings, store, connection):
    """An owner on another host is alive while its heartbeat key exists, dead once it expired."""
    remote = "elsewhere/123:456"
    _running(store, remote)
    watchdog = _watchdog(settings, store, connection)
    connection.set(heartbeat_key(remote), "1", ex=30)
    assert watchdog.recover_abandoned() == []
    connection.delete(heartbeat_key(remote))
    assert watchdog.recover_abandoned() == ["s-1"]


def test_gives_up_after_max_attempts(settings, store, connection):
    """A submission whose gradings keep dying ends as infra_error instead of looping."""
    _running(store, _dead_owner())
    watchdog = _watchdog(settings.replace(max_attempts=1), store, connection)
    watchdog.recover_abandoned()
    record = store.get("s-1")
    assert record is not None and record.status.value == "infra_error" and "gave up" in (record.last_error or "")
    report = json.loads(read_stored(open_storage(settings), record.report_path or "") or b"null")
    assert report["status"] == "infra_error" and "died during" in report["reason"] and "not the submission" in report["reason"]


def test_orphans_of_a_dead_worker_are_killed(settings, store, connection):
    """What a killed worker left in its process group (the hidden suite's pytest) is killed."""
    leader = subprocess.Popen(["sh", "-c", "sleep 60 & echo $!; wait"], stdout=subprocess.PIPE, start_new_session=True)
    assert leader.stdout is not None
    orphan = int(leader.stdout.readline())
    owner = f"{HOST}/{leader.pid}:{_start(leader.pid)}"
    leader.kill()
    leader.wait()
    assert _alive(orphan)
    _running(store, owner)
    _watchdog(settings, store, connection).recover_abandoned()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(orphan):
        time.sleep(0.05)
    assert not _alive(orphan)


def test_lost_job_of_a_queued_record_is_sent_again(settings, store, connection):
    """A queued record whose RQ job Redis does not know (lost, never enqueued) gets a new job after the grace."""
    store.create("s-1", source="file:///r", ref=None, assignment="tiny", submitter=None, job_id="never-enqueued")
    watchdog = _watchdog(settings, store, connection)
    assert watchdog.resend_lost() == []  # still within the grace period
    with store.engine.begin() as conn:
        conn.execute(submissions.update().values(updated_at=utcnow() - timedelta(seconds=120)))
    assert watchdog.resend_lost() == ["s-1"]
    record = store.get("s-1")
    assert record is not None and grading_queue(connection).job_ids == [record.job_id]
    with store.engine.begin() as conn:
        conn.execute(submissions.update().values(updated_at=utcnow() - timedelta(seconds=120)))
    assert watchdog.resend_lost() == []  # its job is queued now


def test_code_a_crashed_grading_left_on_its_way_to_storage_is_removed(settings, store, connection):
    """keeping/<id> older than a job can live is what a crash left: the sweep removes it, a fresh one stays."""
    keeping = settings.paths.keeping_dir
    for name in ("s-crashed", "s-now"):
        (keeping / name).mkdir(parents=True)
        (keeping / name / "app.py").write_text("app = 1")
    old = time.time() - settings.timeouts.job_limit_s - 60
    os.utime(keeping / "s-crashed", (old, old))
    _watchdog(settings, store, connection).sweep()
    assert sorted(p.name for p in keeping.iterdir()) == ["s-now"]


def test_a_host_that_joins_later_is_noticed_by_the_sweep(settings, store, connection):
    """SQLite, alone at start; another host's heartbeat appears: the next sweep refuses once and asks to stop."""
    refusals: list[str] = []

    def heard_on_the_second_ask(reason: str) -> bool:  # as a worker whose RQ loop is not running yet, then is
        refusals.append(reason)
        return len(refusals) == 2

    watchdog = Watchdog(settings, store, connection, f"{HOST}/{os.getpid()}:{_start(os.getpid())}",
                        docker_client=FakeDocker, on_refusal=heard_on_the_second_ask)  # type: ignore[arg-type]
    watchdog.sweep()
    assert refusals == [] and watchdog.refusal is None
    connection.set(heartbeat_key("joined-later/7:9"), "1", ex=30)
    for _ in range(3):
        watchdog.sweep()
    assert len(refusals) == 2, "asked again until heard, then never again"
    assert "other hosts (joined-later)" in refusals[0] and "DATABASE_URL" in refusals[0]
    on_postgres = Watchdog(settings.replace(database_url="postgresql+psycopg://g:pw@127.0.0.1:1/g"), store, connection,
                           "other/1:1", docker_client=FakeDocker, on_refusal=heard_on_the_second_ask)  # type: ignore[arg-type]
    on_postgres.check_hosts()
    assert len(refusals) == 2 and on_postgres.refusal is None, "PostgreSQL is shared by every host: nothing to refuse"
