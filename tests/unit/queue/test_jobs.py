"""The grading job's decisions: results versus retries, the lease, and where the report lands."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from grader.cohort.store import CohortStore
from grader.db.engine import open_store
from grader.db.store import Store
from grader.models import GradeReport, Provenance, Stage, Status
from grader.queue import jobs
from grader.queue.jobs import RetryGrading, WorkerContext, run_grading
from grader.settings import Settings


class FakeJob:
    """The parts of an RQ job the grading uses."""

    def __init__(self, retries_left: int | None) -> None:
        self.id = "j1"
        self.meta: dict[str, str] = {}
        self.retries_left = retries_left
        self.saved: list[str] = []

    def save_meta(self) -> None:
        self.saved.append(self.meta["stage"])


def leased_store(settings: Settings) -> Store:
    """A store holding s-1, queued as job j1 and leased by host/1:1 with token t1."""
    store = open_store(settings)
    store.create("s-1", source="file:///repo", ref=None, assignment="tiny", submitter=None, job_id="j1")
    assert store.acquire("s-1", "j1", "host/1:1", "t1")
    return store


@pytest.fixture
def store(settings: Settings) -> Store:
    return leased_store(settings)


APP = "\n".join(f"def handler_{n}(request):\n    return {{'n': {n}, 'path': request.path}}\n" for n in range(30))


def _pipeline(monkeypatch, status: Status, reason: str = "", score: float = 0.0, host: str = "host-a"):
    """Replace grade_submission with one that reports stages and returns a report of `status` (it writes nothing),
    graded on `host`."""

    def fake(request, settings, on_stage=None, sandbox=None, keep_code=None):
        for stage in (Stage.intake, Stage.build, Stage.report):
            on_stage(stage)
        if keep_code is not None and status is Status.graded:
            keep_code.mkdir(parents=True, exist_ok=True)
            (keep_code / "app.py").write_text(APP)
        report = GradeReport(
            id=request.id, assignment=request.assignment, source={"url": request.source}, status=status,
            reason=reason, score=score, max_score=10, grader_version="test", created_at=datetime.now(UTC),
            provenance=Provenance(host=host, base_image_digest="sha256:base", dependencies_sha256="d", assignment_version="1"),
        )
        return report

    monkeypatch.setattr(jobs, "grade_submission", fake)


def _run(store: Store, settings: Settings, job: FakeJob) -> str:
    record = store.get("s-1")
    assert record is not None
    return run_grading(record, "t1", job, WorkerContext(settings=settings, store=store))  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [Status.graded, Status.rejected, Status.build_failed, Status.boot_failed])
def test_candidate_results_are_final_without_retry(store, settings, monkeypatch, status):
    """graded, rejected, build_failed and boot_failed are results: recorded at once, even with tries left."""
    _pipeline(monkeypatch, status, score=7 if status is Status.graded else 0)
    job = FakeJob(retries_left=2)
    assert _run(store, settings, job) == status.value
    record = store.get("s-1")
    assert record is not None and record.status is status and record.attempts == 1
    assert job.saved == ["intake", "build", "report"] and record.stage is Stage.report
    report = json.loads((settings.paths.reports_dir / "s-1" / "report.json").read_text())
    assert report["status"] == status.value and record.report_path == "reports/s-1/report.json"
    assert list((settings.paths.reports_dir / ".staging").iterdir()) == []


def test_infra_error_with_tries_left_is_retried(store, settings, monkeypatch):
    """An infra_error with retries left gives the lease back and raises for RQ's retry; no report is published."""
    _pipeline(monkeypatch, Status.infra_error, reason="engine down")
    with pytest.raises(RetryGrading, match="engine down"):
        _run(store, settings, FakeJob(retries_left=1))
    record = store.get("s-1")
    assert record is not None
    assert (record.status, record.last_error, record.lease_token) == (Status.queued, "engine down", None)
    assert not (settings.paths.reports_dir / "s-1").exists()


def test_infra_error_on_last_try_is_recorded(store, settings, monkeypatch):
    """On the last try the record says infra_error, with the attempts made and the last error."""
    _pipeline(monkeypatch, Status.infra_error, reason="engine down")
    assert _run(store, settings, FakeJob(retries_left=0)) == "infra_error"
    record = store.get("s-1")
    assert record is not None
    assert (record.status, record.attempts, record.last_error) == (Status.infra_error, 1, "engine down")


def test_crash_of_the_pipeline_on_last_try_writes_an_infra_report(store, settings, monkeypatch):
    """An unexpected exception is our fault: infra_error, with a report saying so."""

    def broken(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(jobs, "grade_submission", broken)
    assert _run(store, settings, FakeJob(retries_left=None)) == "infra_error"
    report = json.loads((settings.paths.reports_dir / "s-1" / "report.json").read_text())
    assert report["status"] == "infra_error" and "RuntimeError: bug" in report["reason"]


def test_lost_lease_stops_the_grading_and_writes_nothing(store, settings, monkeypatch):
    """When a watchdog handed the record to another job, the old grading stops at its next stage."""
    _pipeline(monkeypatch, Status.graded, score=10)
    store.requeue("s-1", "t1", "j2", "worker thought dead")
    assert _run(store, settings, FakeJob(retries_left=2)) == "lease lost"
    record = store.get("s-1")
    assert record is not None and record.status is Status.queued
    assert not (settings.paths.reports_dir / "s-1").exists()


def test_a_new_grading_replaces_the_old_report(store, settings, monkeypatch):
    """A regrade's report replaces the files of the previous one in reports/<id>/."""
    _pipeline(monkeypatch, Status.graded, score=3)
    _run(store, settings, FakeJob(retries_left=0))
    store.regrade("s-1", "j2")
    store.acquire("s-1", "j2", "host/1:1", "t1")
    _pipeline(monkeypatch, Status.graded, score=9)
    _run(store, settings, FakeJob(retries_left=0))
    assert json.loads((settings.paths.reports_dir / "s-1" / "report.json").read_text())["score"] == 9
    assert store.get("s-1").score == 9  # type: ignore[union-attr]


def test_a_regrade_on_another_host_keeps_the_grade_it_replaced(store, settings, monkeypatch):
    """Host A graded 3, host B's regrade 9: the new report names the earlier grade, its host and what differs."""
    _pipeline(monkeypatch, Status.graded, score=3, host="host-a")
    _run(store, settings, FakeJob(retries_left=0))
    first = json.loads((settings.paths.reports_dir / "s-1" / "report.json").read_text())
    assert first["earlier"] is None and first["provenance"]["host"] == "host-a"
    store.regrade("s-1", "j2")
    store.acquire("s-1", "j2", "host-b/1:1", "t1")
    _pipeline(monkeypatch, Status.graded, score=9, host="host-b")
    _run(store, settings, FakeJob(retries_left=0))
    earlier = json.loads((settings.paths.reports_dir / "s-1" / "report.json").read_text())["earlier"]
    assert (earlier["score"], earlier["host"], earlier["status"]) == (3, "host-a", "graded")
    assert earlier["differences"] == {"host": ["host-a", "host-b"]}
    assert earlier["unknown"] == ["commit"], "the fake grading has no commit: not compared, not a difference"


def test_job_timeout_is_derived_from_the_stage_limits():
    """By default a job may use every stage's limit; an explicit limit below their sum is refused."""
    from pydantic import ValidationError

    settings = Settings(clone_timeout_s=10, build_timeout_s=20, boot_timeout_s=5, suite_timeout_s=60, candidate_tests_s=30)
    assert settings.timeouts.job_limit_s == 10 + 20 + 5 + 60 + 30 + 120
    with pytest.raises(ValidationError, match="below the sum of the stage limits"):
        Settings(suite_timeout_s=600, job_timeout_s=600)


def test_a_graded_job_is_placed_in_its_cohort(store, settings, monkeypatch):
    """The worker's grading keeps the code and places the report before publishing it: rank, n, its member."""
    _pipeline(monkeypatch, Status.graded, score=7)
    assert _run(store, settings, FakeJob(retries_left=None)) == "graded"
    report = json.loads((settings.paths.reports_dir / "s-1" / "report.json").read_text())
    assert report["cohort"] == {"rank": 1, "percentile": None, "n": 1} and report["similar"] == []
    member = CohortStore(store.engine).member("s-1", with_hashes=True)
    assert member is not None and member.hashes and member.snapshot_path == "snapshots/s-1"
