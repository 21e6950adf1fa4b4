"""What goes through the storage seam: reports, kept code and check results written and read through a storage
that is not the settings' folders (a stand-in for a bucket), so a reader of this host's disk would find nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask

from grader.assignments import check as check_module
from grader.assignments.check import check_assignment
from grader.cohort.files import keep_snapshot
from grader.cohort.place import place_graded
from grader.cohort.store import CohortStore
from grader.db.engine import open_store
from grader.db.store import Store
from grader.models import GradeReport, Status
from grader.queue.jobs import WorkerContext, run_grading
from grader.queue.watchdog import Watchdog
from grader.settings import PROJECT_ROOT, Settings
from grader.storage.local import LocalStorage
from grader.submissions import delete_submission, load_report, read_check
from grader.web.downloads import available, send_export
from grader.web.side_by_side import side_by_side
from tests.unit.cohort.test_place import _report
from tests.unit.queue.test_jobs import FakeJob, _pipeline, leased_store

REFERENCE = PROJECT_ROOT / "assignments" / "flask-notes" / "solutions" / "reference"


@pytest.fixture
def store(settings: Settings) -> Store:
    return leased_store(settings)


@pytest.fixture
def bucket(tmp_path: Path) -> LocalStorage:
    """A storage of its own: nothing of it is in settings.paths."""
    return LocalStorage(tmp_path / "bucket")


def _grade(store: Store, settings: Settings, bucket: LocalStorage) -> str:
    record = store.get("s-1")
    assert record is not None
    context = WorkerContext(settings=settings, store=store, storage=bucket)
    return run_grading(record, "t1", FakeJob(retries_left=None), context)  # type: ignore[arg-type]


def test_a_job_publishes_its_report_and_kept_code_into_storage(store, settings, bucket, monkeypatch):
    """Staged under reports/.staging/<token>/, published to reports/<id>/, the record holds the key; a stale PDF of an
    earlier grading is removed; the kept code is moved to snapshots/<id>; this host's folders hold nothing."""
    bucket.put("reports/s-1/report.pdf", b"%PDF of an earlier grading")
    _pipeline(monkeypatch, Status.graded, score=7)
    assert _grade(store, settings.replace(pdf=False), bucket) == "graded"
    record = store.get("s-1")
    assert record is not None and record.report_path == "reports/s-1/report.json"
    assert bucket.list("reports/s-1") == ["ctrf.json", "junit.xml", "report.html", "report.json"]
    assert bucket.list("reports/.staging") == [] and bucket.list("snapshots/s-1") == ["app.py"]
    assert not settings.paths.reports_dir.exists() and not (settings.paths.snapshots_dir / "s-1").exists()
    report = load_report(record, bucket)
    assert report is not None and report.score == 7 and report.cohort is not None
    member = CohortStore(store.engine).member("s-1")
    assert member is not None and (member.snapshot_path, member.report_path) == ("snapshots/s-1", "reports/s-1/report.json")


def test_a_job_that_lost_its_lease_leaves_no_staged_files(store, settings, bucket, monkeypatch):
    """The staging prefix of a lost lease is removed and nothing is published."""
    _pipeline(monkeypatch, Status.graded, score=7)
    assert store.requeue("s-1", "t1", "j2", "taken over")
    assert _grade(store, settings, bucket) == "lease lost"
    assert bucket.list("reports") == []


def test_downloads_and_deletion_go_through_storage(store, settings, bucket, monkeypatch):
    """The offered exports are those in storage; a download reads storage; deleting removes every key of it."""
    _pipeline(monkeypatch, Status.graded, score=7)
    _grade(store, settings.replace(pdf=False), bucket)
    record = store.get("s-1")
    assert record is not None
    assert available(record, bucket) == {"JUnit XML": "junit.xml", "CTRF JSON": "ctrf.json", "JSON": "report.json"}
    with Flask(__name__).test_request_context():
        response = send_export(record, "junit.xml", bucket)
        assert response is not None
        response.direct_passthrough = False  # send_file streams; read it whole
        assert response.get_data().startswith(b"<?xml")
        assert send_export(record, "report.pdf", bucket) is None and send_export(record, "report.html", bucket) is None
    delete_submission(settings, store, "s-1", bucket)
    assert bucket.list("reports/s-1") == [] and bucket.list("snapshots/s-1") == []


def test_the_watchdogs_last_word_is_written_to_storage(store, settings, bucket):
    """A submission whose gradings keep dying ends with an infra_error report in storage, under its key."""
    record = store.get("s-1")
    assert record is not None
    watchdog = Watchdog(settings, store, connection=None, owner="host/2:2", storage=bucket)  # type: ignore[arg-type]
    assert watchdog._give_up(record, "worker died during build")
    final = store.get("s-1")
    assert final is not None and final.status is Status.infra_error and final.report_path == "reports/s-1/report.json"
    assert json.loads(bucket.get("reports/s-1/report.json") or b"")["reason"].startswith("worker died during build")
    assert not settings.paths.reports_dir.exists()


def test_side_by_side_reads_the_kept_code_from_storage(settings, bucket):
    """Two graded copies placed with a storage: their code is read back from it for the side-by-side view."""
    engine = open_store(settings).engine
    for sid in ("s-a", "s-b"):
        assert keep_snapshot(REFERENCE, settings.paths.keeping_dir / sid) is not None
        place_graded(_report(sid, 90), settings, engine, bucket)
        assert bucket.list(f"snapshots/{sid}")
        assert not (settings.paths.keeping_dir / sid).exists() and not (settings.paths.snapshots_dir / sid).exists()
    cohort = CohortStore(engine)
    a, b = cohort.member("s-a"), cohort.member("s-b")
    assert a is not None and b is not None
    shown = side_by_side(a, b, cohort, settings, [], bucket)
    assert shown.expired == [] and shown.score is not None and shown.score > 0.9 and shown.files
    bucket.delete_tree("snapshots/s-b")
    assert side_by_side(a, b, cohort, settings, [], bucket).expired == ["s-b"]


def test_a_check_result_is_recorded_in_storage(settings, bucket, notes, monkeypatch):
    """`grader assignments check` writes checks/<id>.json to storage, where the admin page reads it."""
    monkeypatch.setattr(check_module, "solution_folders", lambda assignment: [])
    check_assignment(notes, settings, storage=bucket)
    assert read_check(bucket, "flask-notes") == json.loads(bucket.get("checks/flask-notes.json") or b"")
    assert read_check(bucket, "flask-notes")["assignment"] == "flask-notes"  # type: ignore[index]
    assert not (settings.paths.data_dir / "checks").exists() and read_check(bucket, "tiny") is None


def test_a_row_of_before_the_seam_still_reads_its_local_file(store, settings, bucket, tmp_path):
    """report_path holding an absolute path (graded before the seam) is read from this host's disk."""
    folder = tmp_path / "old" / "s-1"
    folder.mkdir(parents=True)
    report = GradeReport(id="s-1", assignment="tiny", source={"url": "u"}, status=Status.graded, score=3, max_score=10,
                         grader_version="0", created_at=datetime.now(UTC))
    (folder / "report.json").write_text(report.model_dump_json())
    assert store.finish("s-1", "t1", status=Status.graded, score=3, max_score=10, report_path=str(folder / "report.json"),
                        error=None)
    record = store.get("s-1")
    assert record is not None and load_report(record, bucket) == report and available(record, bucket) == {"JSON": "report.json"}
