"""The submissions store: compare-and-set leases, the status JSON shape, reading stored stages."""

from __future__ import annotations

import multiprocessing

import pytest

from grader.db.engine import open_store
from grader.db.store import Store
from grader.models import Stage, Status
from grader.settings import Settings

STATUS_KEYS = {"id", "status", "stage", "attempts", "score", "max_score", "report"}


def _submit(store: Store, submission_id: str = "s-1", job_id: str = "j1") -> None:
    store.create(submission_id, source="file:///repo", ref=None, assignment="tiny", submitter="ann", job_id=job_id)


def _finish(store: Store, token: str, publish=lambda: None, submission_id: str = "s-1") -> bool:
    return store.finish(
        submission_id, token, status=Status.graded, score=5, max_score=10, report_path="/r/report.json",
        error=None, publish=publish,
    )


def test_new_record_is_queued_with_its_job(store):
    """A created record is queued, has no attempts yet, and names the RQ job that may grade it."""
    _submit(store)
    record = store.get("s-1")
    assert record is not None
    assert (record.status, record.attempts, record.job_id, record.submitter) == (Status.queued, 0, "j1", "ann")


def test_only_one_acquire_wins(store):
    """Two deliveries of the same job: the first takes the lease, the second finds the record running."""
    _submit(store)
    assert store.acquire("s-1", "j1", "host/1:1", "t1") is True
    assert store.acquire("s-1", "j1", "host/2:2", "t2") is False
    record = store.get("s-1")
    assert record is not None
    assert (record.status, record.owner, record.lease_token, record.attempts) == (Status.running, "host/1:1", "t1", 1)


def test_stale_job_cannot_acquire(store):
    """A job that is not the record's current one (left over, or replaced by a watchdog) does nothing."""
    _submit(store)
    assert store.acquire("s-1", "j-old", "host/1:1", "t1") is False
    assert store.get("s-1").status is Status.queued  # type: ignore[union-attr]


def test_only_the_lease_holder_moves_stage_and_finishes(store):
    """After a watchdog requeued the record, the old holder can neither set a stage nor write a result."""
    _submit(store)
    store.acquire("s-1", "j1", "host/1:1", "old")
    assert store.set_stage("s-1", "old", Stage.build) is True
    assert store.requeue("s-1", "old", "j2", "worker died") is True
    assert store.acquire("s-1", "j2", "host/2:2", "new") is True
    published: list[str] = []
    assert store.set_stage("s-1", "old", Stage.suite) is False
    assert _finish(store, "old", publish=lambda: published.append("old")) is False
    assert _finish(store, "new", publish=lambda: published.append("new")) is True
    record = store.get("s-1")
    assert record is not None
    assert (record.status, record.score, record.attempts, record.lease_token) == (Status.graded, 5, 2, None)
    assert published == ["new"]


def test_failed_publish_leaves_the_record_running(store):
    """When moving the report fails, the result is not committed: the record is still running, lease held."""
    _submit(store)
    store.acquire("s-1", "j1", "host/1:1", "t1")

    def broken() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError):
        _finish(store, "t1", publish=broken)
    record = store.get("s-1")
    assert record is not None and (record.status, record.lease_token) == (Status.running, "t1")


def test_requeue_is_won_by_one_watchdog(store):
    """Two watchdogs that saw the same death: only the first hands the record to a new job."""
    _submit(store)
    store.acquire("s-1", "j1", "host/1:1", "t1")
    assert store.requeue("s-1", "t1", "j2", "died") is True
    assert store.requeue("s-1", "t1", "j3", "died") is False
    record = store.get("s-1")
    assert record is not None and (record.status, record.job_id, record.last_error) == (Status.queued, "j2", "died")


def test_release_keeps_the_job_for_rq_retry(store):
    """An infra_error with tries left gives the lease back; the same RQ job (retried) can take it again."""
    _submit(store)
    store.acquire("s-1", "j1", "host/1:1", "t1")
    assert store.release("s-1", "t1", "engine down") is True
    assert store.acquire("s-1", "j1", "host/1:1", "t2") is True
    assert store.get("s-1").attempts == 2  # type: ignore[union-attr]


def test_regrade_only_from_a_final_status(store):
    """Regrading a queued or running submission is refused; a finished one is queued with attempts reset."""
    _submit(store)
    assert store.regrade("s-1", "j2") is False
    store.acquire("s-1", "j1", "host/1:1", "t1")
    assert store.regrade("s-1", "j2") is False
    _finish(store, "t1")
    assert store.regrade("s-1", "j2") is True
    record = store.get("s-1")
    assert record is not None
    assert (record.status, record.attempts, record.job_id, record.score, record.report_path) == (
        Status.queued, 0, "j2", None, None,
    )


def test_replace_job_is_compare_and_set(store):
    """Re-sending a lost job replaces the job id only if nobody replaced it first."""
    _submit(store)
    assert store.replace_job("s-1", "j1", "j2") is True
    assert store.replace_job("s-1", "j1", "j3") is False
    assert store.get("s-1").job_id == "j2"  # type: ignore[union-attr]


def _race(database: str, token: str, results: multiprocessing.Queue) -> None:
    store = open_store(Settings(database_url=database))
    results.put((token, store.acquire("s-1", "j1", f"host/{token}", token)))


def test_concurrent_processes_acquire_once(database_settings):
    """Eight processes race for one queued record: exactly one wins the lease."""
    settings = database_settings
    store = open_store(settings)
    _submit(store)
    context = multiprocessing.get_context("fork")
    results: multiprocessing.Queue = context.Queue()
    processes = [context.Process(target=_race, args=(settings.database_url, f"t{i}", results)) for i in range(8)]
    for process in processes:
        process.start()
    outcomes = dict(results.get(timeout=60) for _ in processes)
    for process in processes:
        process.join(timeout=60)
    winners = [token for token, won in outcomes.items() if won]
    assert len(winners) == 1
    assert store.get("s-1").lease_token == winners[0]  # type: ignore[union-attr]


def test_status_json_has_exactly_the_public_keys(store):
    """`grader status --json` has exactly id, status, stage, attempts, score, max_score, report."""
    _submit(store)
    queued = store.get("s-1").status_json()  # type: ignore[union-attr]
    assert set(queued) == STATUS_KEYS
    assert queued == {"id": "s-1", "status": "queued", "stage": None, "attempts": 0, "score": None,
                      "max_score": None, "report": None}
    store.acquire("s-1", "j1", "host/1:1", "t1")
    store.set_stage("s-1", "t1", Stage.suite)
    running = store.get("s-1").status_json()  # type: ignore[union-attr]
    assert (running["status"], running["stage"], running["attempts"], running["score"]) == ("running", "suite", 1, None)
    _finish(store, "t1")
    done = store.get("s-1").status_json()  # type: ignore[union-attr]
    assert set(done) == STATUS_KEYS
    assert (done["status"], done["score"], done["max_score"], done["report"]) == ("graded", 5, 10, "/r/report.json")


def test_a_stage_stored_before_the_renovation_reads_as_the_suite(store):
    """A row still saying `tests` (not yet migrated by 0004) is read as Stage.suite, not refused."""
    from sqlalchemy import update

    from grader.db.schema import submissions

    _submit(store)
    store.acquire("s-1", "j1", "host/1:1", "t1")
    with store.engine.begin() as conn:
        conn.execute(update(submissions).values(stage="tests"))
    record = store.get("s-1")
    assert record is not None and record.stage is Stage.suite


def test_queue_position_counts_the_queued_submissions_before_this_one(store):
    """1 for the next to be graded, 2 behind it; None once the submission is running or unknown."""
    _submit(store, "s-1", "j1")
    _submit(store, "s-2", "j2")
    assert (store.queue_position("s-1"), store.queue_position("s-2")) == (1, 2)
    store.acquire("s-1", "j1", "host/1:1", "t1")
    assert (store.queue_position("s-1"), store.queue_position("s-2"), store.queue_position("nope")) == (None, 1, None)
