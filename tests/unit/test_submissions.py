"""The submissions service: progress words from STAGE_LABELS, recording when Redis refuses, regrade's refusals."""

from __future__ import annotations

import pytest

from grader.db.engine import open_store
from grader.db.store import Store
from grader.models import STAGE_LABELS, Stage, Status
from grader.queue.broker import BrokerUnavailable
from grader.settings import Settings
from grader.submissions import PROGRESS_WORDS, SubmitError, progress, record_submission, regrade_submission


@pytest.fixture
def store(settings: Settings) -> Store:
    return open_store(settings)


def _refuse(_submission_id: str, _job_id: str) -> None:
    raise BrokerUnavailable("Redis at redis://nowhere is not reachable")


def _record(store: Store, enqueued: list[tuple[str, str]]) -> str:
    queued = record_submission(store, lambda s, j: enqueued.append((s, j)), url="file:///repo", ref=None,
                               assignment="tiny", submitter="ann")
    assert queued.enqueued and queued.record.status is Status.queued
    return queued.record.id


def test_progress_is_the_stage_word_of_stage_labels(store):
    """queued, then each running stage's STAGE_LABELS word (a stored `tests` too), then the final status."""
    sid = _record(store, [])
    record = store.get(sid)
    assert record is not None and progress(record) == "queued"
    store.acquire(sid, record.job_id or "", "host/1:1", "t1")
    assert progress(store.get(sid)) == Stage.intake.progress  # type: ignore[arg-type]  # running, no stage yet
    for stage in Stage:
        store.set_stage(sid, "t1", stage)
        assert progress(store.get(sid)) == STAGE_LABELS[stage][0]  # type: ignore[arg-type]
    store.finish(sid, "t1", status=Status.build_failed, score=0, max_score=10, report_path=None, error=None)
    assert progress(store.get(sid)) == "build_failed"  # type: ignore[arg-type]


def test_the_status_steps_are_queued_the_stage_words_and_graded():
    """The steps pages show come from STAGE_LABELS, in the pipeline's order."""
    assert PROGRESS_WORDS == ("queued", "cloning", "building", "booting", "testing", "reporting", "graded")


def test_a_refused_enqueue_leaves_the_record_queued_with_its_error(store):
    """When Redis refuses the job the record is kept (a watchdog enqueues it later) and the caller is told why."""
    queued = record_submission(store, _refuse, url="file:///repo", ref="", assignment="tiny", submitter=None)
    assert not queued.enqueued and "not reachable" in (queued.enqueue_error or "")
    assert queued.record.status is Status.queued and queued.record.ref is None
    assert (queued.record.last_error or "").startswith("not enqueued: Redis at redis://nowhere is not reachable")


def test_regrade_refuses_an_unknown_or_unfinished_submission(store):
    """404 for an id that does not exist, 409 while queued; a finished one is queued again with a new job."""
    enqueued: list[tuple[str, str]] = []
    with pytest.raises(SubmitError) as unknown:
        regrade_submission(store, lambda s, j: None, "s-nope")
    assert unknown.value.status == 404
    sid = _record(store, enqueued)
    with pytest.raises(SubmitError, match="is queued") as unfinished:
        regrade_submission(store, lambda s, j: enqueued.append((s, j)), sid)
    assert unfinished.value.status == 409 and len(enqueued) == 1
    first_job = enqueued[0][1]
    store.acquire(sid, first_job, "host/1:1", "t1")
    store.finish(sid, "t1", status=Status.graded, score=5, max_score=10, report_path=None, error=None)
    again = regrade_submission(store, lambda s, j: enqueued.append((s, j)), sid)
    assert again.enqueued and again.record.status is Status.queued and again.record.job_id == enqueued[1][1] != first_job
