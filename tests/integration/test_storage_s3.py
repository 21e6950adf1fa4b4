"""The storage seam against a real S3-compatible server (moto's server mode on 127.0.0.1) and the local folder.

The same contract runs on both; then a report written by the worker's real path into S3 is read back by the
web app's pages and API, with no reports folder on any disk.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from grader.db.store import Store
from grader.errors import InfraError
from grader.models import GradeReport, Status
from grader.queue.jobs import WorkerContext, run_grading
from grader.settings import Settings
from grader.stages.report import store_report
from grader.storage import Storage, open_storage, report_folder
from grader.storage.local import LocalStorage
from grader.storage.s3 import S3Storage
from grader.web import create_app
from grader.web.users import Role, Users
from tests.integration.conftest import s3_storage_fields
from tests.unit.queue.test_jobs import FakeJob, _pipeline, leased_store
from tests.unit.stages import report_samples as samples
from tests.web.conftest import PASSWORD, csrf_of

BUCKET = "grader-test"


@pytest.fixture(autouse=True)
def nothing_left_behind() -> None:
    """No Docker here: these tests make no container, so the package's leftover check (which asks the engine) is
    replaced by nothing, and the module runs on a host without an engine."""


@pytest.fixture
def s3_settings(settings: Settings, s3_url: str, request: pytest.FixtureRequest) -> Settings:
    """Settings naming a fresh bucket of the server (one per test) through GRADER_STORAGE's fields."""
    bucket = f"{BUCKET}-{abs(hash(request.node.nodeid)) % 10**8}"
    return settings.replace(storage=s3_storage_fields(s3_url, bucket, prefix="deploy-a/"))


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, settings: Settings) -> Storage:
    if request.param == "s3":
        return open_storage(request.getfixturevalue("s3_settings"))
    return open_storage(settings)


def test_open_storage_follows_the_backend_setting(storage, settings):
    """backend s3 gives an S3Storage on the bucket, local the folders of the data directory."""
    assert isinstance(storage, S3Storage | LocalStorage)
    if isinstance(storage, S3Storage):
        assert storage.prefix == "deploy-a/" and storage.bucket.startswith(BUCKET)
    else:
        assert storage.path("reports/s-1/report.json") == settings.paths.reports_dir / "s-1" / "report.json"


def test_put_get_exists_delete(storage):
    """Bytes in, the same bytes out; a missing key is None and False; delete is idempotent."""
    assert storage.get("reports/s-1/report.json") is None and not storage.exists("reports/s-1/report.json")
    storage.put("reports/s-1/report.json", b'{"a": 1}\n\x00\xff')
    assert storage.get("reports/s-1/report.json") == b'{"a": 1}\n\x00\xff' and storage.exists("reports/s-1/report.json")
    storage.put("reports/s-1/report.json", b"second")
    assert storage.get("reports/s-1/report.json") == b"second"
    storage.delete("reports/s-1/report.json")
    storage.delete("reports/s-1/report.json")
    assert storage.get("reports/s-1/report.json") is None and not storage.exists("reports/s-1/report.json")


def test_a_prefix_is_a_folder(storage):
    """list and delete_tree take `reports/s-1` as a folder: `reports/s-10` and the key `reports/s-1` itself stay."""
    for key in ("reports/s-1/report.json", "reports/s-1/junit.xml", "reports/s-1/deep/er.txt", "reports/s-10/report.json"):
        storage.put(key, key.encode())
    assert storage.list("reports/s-1") == ["deep/er.txt", "junit.xml", "report.json"]
    assert storage.list("reports/s-2") == []
    storage.delete_tree("reports/s-1")
    assert storage.list("reports/s-1") == [] and storage.get("reports/s-10/report.json") == b"reports/s-10/report.json"
    storage.delete_tree("reports/s-1")  # nothing left: no error


def test_a_tree_moves_in_replacing_the_old_and_reads_back(storage, tmp_path):
    """move_tree makes a folder the tree (an earlier tree's other files gone), consumes it; open_tree reads it."""
    old = tmp_path / "old"
    (old / "pkg").mkdir(parents=True)
    (old / "pkg" / "gone.py").write_text("x = 1\n")
    storage.move_tree(old, "snapshots/s-1")
    new = tmp_path / "new"
    (new / "app" / "templates").mkdir(parents=True)
    (new / "app" / "views.py").write_text("def index():\n    return 'hi'\n")
    (new / "app" / "templates" / "base.html").write_bytes(b"<p>\xc3\xa9</p>")
    storage.move_tree(new, "snapshots/s-1")
    assert not new.exists() and storage.list("snapshots/s-1") == ["app/templates/base.html", "app/views.py"]
    with storage.open_tree("snapshots/s-1") as folder:
        assert folder is not None
        assert (folder / "app" / "templates" / "base.html").read_bytes() == b"<p>\xc3\xa9</p>"
        assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
            "app/templates/base.html", "app/views.py"]
    with storage.open_tree("snapshots/s-2") as missing:
        assert missing is None


@pytest.mark.parametrize("key", ["../outside", "reports/../../etc/passwd", "/etc/passwd", "reports/a\x00b", "reports//x",
                                 "reports/./x", "", "reports\\x"])
def test_keys_that_could_leave_the_root_are_refused(storage, key):
    """'..', absolute keys, NUL, empty parts and backslashes are refused before anything is touched."""
    for call in (lambda: storage.put(key, b"x"), lambda: storage.get(key), lambda: storage.exists(key),
                 lambda: storage.list(key), lambda: storage.delete_tree(key)):
        with pytest.raises(ValueError, match="refused"):
            call()


def test_an_unreachable_store_is_an_infra_error(s3_settings):
    """A store nobody answers on is our outage, said in one line naming the endpoint to check."""
    down = open_storage(s3_settings.replace(storage={**s3_settings.storage.model_dump(),
                                                     "s3_endpoint_url": "http://127.0.0.1:9", "s3_timeout_s": 0.5}))
    with pytest.raises(InfraError, match="127.0.0.1:9.*GRADER_STORAGE__S3_ENDPOINT_URL"):
        down.get("reports/s-1/report.json")


def test_the_secret_is_masked_in_the_logged_settings(s3_settings):
    """`Settings.masked()` (what `worker` and `serve` log) never shows the secret access key."""
    shown = s3_settings.masked()["storage"]
    assert shown["s3_secret_access_key"] == "**********" and shown["backend"] == "s3" and "testing" != shown["s3_secret_access_key"]


def _reviewer(app) -> FlaskClient:
    client = app.test_client()
    Users(app.extensions["grader"].store.engine).create_user("rita@example.com", PASSWORD, Role.reviewer)
    token = csrf_of(client.get("/login").get_data(as_text=True))
    assert client.post("/login", data={"email": "rita@example.com", "password": PASSWORD, "csrf_token": token}).status_code == 302
    return client


def _web_settings(s3_settings: Settings) -> Settings:
    """The web host's settings: the same database and bucket, a reports folder that must never be made."""
    return s3_settings.replace(secret_key="test-key", reports_dir=s3_settings.paths.data_dir.parent / "no-reports-here")


def test_a_report_in_s3_is_served_by_the_web_app(s3_settings):
    """A report written by store_report into S3 (the worker's path) is the reviewer's page, its HTML, downloads and
    the API's JSON, read from the bucket: the reports folder on disk never exists."""
    web = _web_settings(s3_settings)
    store: Store = leased_store(web)
    report = samples.flawed().model_copy(update={"id": "s-1"})
    bucket = open_storage(s3_settings)
    key = store_report(report, bucket, report_folder("s-1"))
    assert store.finish("s-1", "t1", status=report.status, score=report.score, max_score=report.max_score,
                        report_path=key, error=None)
    assert key == "reports/s-1/report.json" and bucket.list("reports/s-1") == [
        "ctrf.json", "junit.xml", "report.html", "report.json", "report.pdf"]

    app = create_app(web, store=store, enqueue=lambda sid, jid: None)
    app.config["TESTING"] = True
    client = _reviewer(app)
    page = client.get("/submissions/s-1")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Passwords are not stored in plain text" in html
    assert "/submissions/s-1/report.pdf" in html and "/submissions/s-1/junit.xml" in html
    standalone = client.get("/submissions/s-1/report.html")
    assert standalone.status_code == 200 and 'href="report.pdf"' in standalone.get_data(as_text=True)
    pdf = client.get("/submissions/s-1/report.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF") and pdf.mimetype == "application/pdf"
    stored = client.get("/submissions/s-1/report.json")
    assert GradeReport.model_validate_json(stored.data) == report

    bucket.delete("reports/s-1/report.pdf")  # a report whose PDF failed: not offered, 404
    assert "/submissions/s-1/report.pdf" not in client.get("/submissions/s-1").get_data(as_text=True)
    assert client.get("/submissions/s-1/report.pdf").status_code == 404
    assert not web.paths.reports_dir.exists() and not s3_settings.paths.reports_dir.exists()


def test_a_worker_grading_publishes_into_s3_and_delete_removes_it(s3_settings, monkeypatch):
    """The queue's job stages under reports/.staging/, publishes reports/<id>/, moves the kept code to snapshots/<id>
    and marks the record final with the key; the API serves it; deleting removes every key. Nothing on disk."""
    _pipeline(monkeypatch, Status.graded, score=7)
    store = leased_store(s3_settings)
    record = store.get("s-1")
    assert record is not None
    bucket = open_storage(s3_settings)
    context = WorkerContext(settings=s3_settings, store=store, storage=bucket)
    assert run_grading(record, "t1", FakeJob(retries_left=None), context) == "graded"  # type: ignore[arg-type]
    record = store.get("s-1")
    assert record is not None and record.final and record.report_path == "reports/s-1/report.json"
    assert json.loads(bucket.get("reports/s-1/report.json") or b"")["cohort"]["n"] == 1
    assert bucket.list("reports/.staging/t1") == [] and bucket.list("snapshots/s-1") == ["app.py"]
    assert not s3_settings.paths.reports_dir.exists() and not (s3_settings.paths.snapshots_dir / "s-1").exists()

    from grader.web.tokens import ApiTokens

    web = _web_settings(s3_settings)
    app = create_app(web, store=store, enqueue=lambda sid, jid: None)
    admin = Users(store.engine).create_user("ada@example.com", PASSWORD, Role.admin)
    bearer = {"Authorization": f"Bearer {ApiTokens(store.engine).create_token(admin.id, 'ci')}"}
    api = app.test_client()
    answer = api.get("/api/submissions/s-1/report", headers=bearer)
    assert answer.status_code == 200 and answer.get_json()["score"] == 7
    assert api.get("/api/submissions/s-1/junit.xml", headers=bearer).data.startswith(b"<?xml")
    assert api.delete("/api/submissions/s-1", headers=bearer).status_code == 200
    assert bucket.list("reports/s-1") == [] and bucket.list("snapshots/s-1") == []
    assert not Path(web.paths.reports_dir).exists()
