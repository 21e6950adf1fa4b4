"""Imports: the API stores and queues (after its commit), the task parses and stores, safely run twice."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from jobs_app.extensions import db
from jobs_app.importer import run_import
from jobs_app.models import Import, Record

from .conftest import MAX_ERRORS

GOOD = "email,name,amount\r\na@b.co,\"Doe, Jane\",1.50\r\nc@d.org,\"two\nlines\",-3\r\n"


def _records(app, import_id):
    with app.app_context():
        return db.session.execute(
            select(Record.row_no, Record.email, Record.name, Record.amount)
            .where(Record.import_id == import_id).order_by(Record.row_no)
        ).all()


def test_post_answers_202_pending_with_the_forwarded_location_and_queues_after_commit(alice, queue):
    answer = alice.upload(GOOD, headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "j-1.jobs.test"})
    body = answer.get_json()
    assert answer.status_code == 202
    assert body == {"id": body["id"], "filename": "upload.csv", "status": "pending", "total_rows": 0,
                    "record_count": 0, "invalid_rows": 0, "errors": [], "error": None}
    assert answer.headers["Location"] == f"https://j-1.jobs.test/api/imports/{body['id']}"
    assert queue.ids == [body["id"]]  # the queue fixture checked that the row was committed first
    assert alice.get(f"/api/imports/{body['id']}").get_json()["status"] == "pending"


@pytest.mark.parametrize("fields", [
    {}, {"csv": ""}, {"csv": 3}, {"csv": "a\x00b"}, {"csv": "x", "filename": ""},
    {"csv": "x", "filename": "f" * 101}, {"csv": "x", "filename": 5},
])
def test_post_refuses_bad_fields(alice, queue, fields):
    assert alice.post("/api/imports", json=fields).status_code == 400
    assert queue.ids == []


def test_null_filename_is_the_default_and_100_characters_are_fine(alice):
    assert alice.upload("x", filename=None).get_json()["filename"] == "upload.csv"
    assert alice.upload("x", filename="f" * 100).status_code == 202


def test_someone_elses_import_is_not_found_and_not_listed(alice, bob):
    theirs = bob.upload(GOOD).get_json()["id"]
    mine = alice.upload(GOOD).get_json()["id"]
    assert alice.get(f"/api/imports/{theirs}").status_code == 404
    assert alice.get(f"/api/imports/{theirs}").get_json() == alice.get("/api/imports/99999").get_json()
    assert alice.get("/api/imports/99999999999999").status_code == 404
    assert [i["id"] for i in alice.get("/api/imports").get_json()] == [mine]


def test_the_task_stores_the_valid_rows_and_lists_the_first_errors(app, alice, work):
    bad = "".join(f"bad{i},A,1\n" for i in range(MAX_ERRORS + 2))
    import_id = alice.upload(GOOD + bad + "e@f.io,  Eve  ,7\n").get_json()["id"]
    assert work() == ["done"]
    body = alice.get(f"/api/imports/{import_id}").get_json()
    assert (body["status"], body["total_rows"], body["record_count"], body["invalid_rows"], body["error"]) == (
        "done", MAX_ERRORS + 5, 3, MAX_ERRORS + 2, None)
    assert [e["row"] for e in body["errors"]] == [3, 4, 5][:MAX_ERRORS]
    assert _records(app, import_id) == [
        (1, "a@b.co", "Doe, Jane", Decimal("1.50")), (2, "c@d.org", "two\nlines", Decimal("-3.00")),
        (MAX_ERRORS + 5, "e@f.io", "Eve", Decimal("7.00")),
    ]


@pytest.mark.parametrize("text", ["email,name\na@b.co,A\n", GOOD + 'x@y.co,"open,1\n'])
def test_a_failed_import_keeps_no_records(app, alice, work, text):
    import_id = alice.upload(text).get_json()["id"]
    assert work() == ["failed"]
    body = alice.get(f"/api/imports/{import_id}").get_json()
    assert body["status"] == "failed" and body["error"] and body["errors"] == [] and body["record_count"] == 0
    assert _records(app, import_id) == []


def test_running_twice_or_after_a_dead_run_stores_each_row_once(app, alice, queue):
    rows = "".join(f"u{i}@b.co,U{i},{i}\n" for i in range(1, 11))
    import_id = alice.upload("email,name,amount\n" + rows).get_json()["id"]
    with app.app_context():
        # a run that died after two of its batches: running, 8 records committed
        db.session.execute(update(Import).where(Import.id == import_id).values(status="running"))
        db.session.add_all(Record(import_id=import_id, row_no=n, email=f"u{n}@b.co", name=f"U{n}", amount=n)
                           for n in range(1, 9))
        db.session.commit()
        assert run_import(import_id) == "done"  # takes over the running import
        assert run_import(import_id) == "skipped: missing, done or failed"  # done is final
        count = db.session.scalar(select(func.count()).select_from(Record).where(Record.import_id == import_id))
    assert count == 10
    assert alice.get(f"/api/imports/{import_id}").get_json()["record_count"] == 10


def test_unknown_or_absurd_ids_are_ignored(app):
    with app.app_context():
        assert run_import(12345) == "skipped: missing, done or failed"
        assert run_import(2**40).startswith("ignored")


def test_the_celery_task_runs_in_the_app_context_with_late_acknowledgement(app, alice, queue):
    celery = app.extensions["celery"]
    task = celery.tasks["jobs_app.process_import"]
    assert task.acks_late and task.reject_on_worker_lost
    assert celery.conf.worker_prefetch_multiplier == 1
    assert celery.conf.broker_transport_options["visibility_timeout"] <= 30
    import_id = alice.upload(GOOD).get_json()["id"]
    assert task.apply(args=[import_id]).get() == "done"  # no app context pushed here: the task pushes its own
    assert alice.get(f"/api/imports/{import_id}").get_json()["record_count"] == 2


def test_the_queue_being_down_fails_the_import_instead_of_leaving_it_pending(monkeypatch, alice):
    def unreachable(_import_id):
        raise ConnectionError("broker down")

    monkeypatch.setattr("jobs_app.api.enqueue_import", unreachable)
    answer = alice.upload(GOOD)
    assert answer.status_code == 503 and "error" in answer.get_json()
    assert alice.get("/api/imports").get_json()[0]["status"] == "failed"
