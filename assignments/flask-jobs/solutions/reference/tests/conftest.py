"""Fixtures: the app on a fresh SQLite file per test, its schema built by the migrations as in production.

No broker and no worker: queued tasks are recorded (and checked to follow the commit), and tests run
the task's body themselves, in the app context as the worker does.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from flask_migrate import upgrade

from jobs_app import create_app
from jobs_app.importer import run_import

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
PASSWORD = "correct horse battery"
EXPIRES = 600
MAX_ERRORS = 3


def pytest_configure(config):
    # migrations/env.py as Flask-Migrate generates it still calls db.get_engine()
    config.addinivalue_line("filterwarnings", "ignore:'get_engine' is deprecated:DeprecationWarning")


def _make_app(database: Path):
    return create_app({
        "DATABASE_URL": f"sqlite:///{database}",
        "BROKER_URL": "memory://",
        "SECRET_KEY": "test-session-key-also-32-bytes-long",
        "JWT_SECRET_KEY": "test-token-key-of-32-bytes-or-more!",
        "JWT_ACCESS_TOKEN_EXPIRES": EXPIRES,
        "IMPORT_MAX_ERRORS": MAX_ERRORS,
        "IMPORT_BATCH_SIZE": 4,
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",  # salted still, only faster
        "TESTING": True,
    })


@pytest.fixture(scope="session")
def migrated(tmp_path_factory) -> Path:
    """One database file built by `upgrade`, copied for each test (quicker than migrating each time)."""
    template = tmp_path_factory.mktemp("template") / "jobs.db"
    app = _make_app(template)
    with app.app_context():
        upgrade(directory=str(MIGRATIONS))
        from jobs_app.extensions import db

        db.engine.dispose()
    return template


@pytest.fixture
def database(tmp_path, migrated) -> Path:
    copy = tmp_path / "jobs.db"
    shutil.copyfile(migrated, copy)
    return copy


@pytest.fixture
def app(database):
    return _make_app(database)


@pytest.fixture
def client(app):
    return app.test_client()


class Queue:
    """Stands in for the broker: records the ids queued, each checked to be committed already."""

    def __init__(self, database: Path):
        self.database = database
        self.ids: list[int] = []

    def __call__(self, import_id: int) -> None:
        with sqlite3.connect(self.database) as other:  # another connection sees only committed rows
            found = other.execute("SELECT status FROM imports WHERE id = ?", (import_id,)).fetchone()
        assert found == ("pending",), "the task was queued before the import was committed"
        self.ids.append(import_id)


@pytest.fixture
def queue(monkeypatch, database) -> Queue:
    recorder = Queue(database)
    monkeypatch.setattr("jobs_app.api.enqueue_import", recorder)
    return recorder


@pytest.fixture
def work(app, queue):
    """Run every queued task, as the worker would (in the app context); return what each run said."""

    def run() -> list[str]:
        said = []
        while queue.ids:
            import_id = queue.ids.pop(0)
            with app.app_context():
                said.append(run_import(import_id))
        return said

    return run


class Api:
    """One user of the JSON API: registers, gets a token, sends it."""

    def __init__(self, client, username: str):
        self.client = client
        self.username = username
        assert client.post("/api/register", json={"username": username, "password": PASSWORD}).status_code == 201
        answer = client.post("/api/token", json={"username": username, "password": PASSWORD})
        assert answer.status_code == 200
        self.token = answer.get_json()["access_token"]
        self.headers = {"Authorization": f"Bearer {self.token}"}

    def get(self, path, **kwargs):
        return self.client.get(path, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    def post(self, path, **kwargs):
        return self.client.post(path, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    def upload(self, csv_text: str, headers: dict[str, str] | None = None, **fields):
        return self.post("/api/imports", json={"csv": csv_text, **fields}, headers=headers or {})


@pytest.fixture
def alice(client, queue):
    return Api(client, "alice")


@pytest.fixture
def bob(app, queue):
    return Api(app.test_client(), "bob")
