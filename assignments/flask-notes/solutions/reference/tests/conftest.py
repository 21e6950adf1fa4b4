"""Fixtures: the app on a fresh SQLite file per test, its schema built by the migrations as in production."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask_migrate import upgrade

from notes_app import create_app

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
PASSWORD = "correct horse battery"


def pytest_configure(config):
    # migrations/env.py as Flask-Migrate generates it still calls db.get_engine()
    config.addinivalue_line("filterwarnings", "ignore:'get_engine' is deprecated:DeprecationWarning")


@pytest.fixture
def app(tmp_path):
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'notes.db'}",
        "SECRET_KEY": "test-secret-key",
        "TESTING": True,
    })
    with app.app_context():
        upgrade(directory=str(MIGRATIONS))
    return app


@pytest.fixture
def client(app):
    return app.test_client()


class Accounts:
    """Register and log in through the JSON API of one test client."""

    password = PASSWORD

    def __init__(self, client):
        self.client = client

    def register(self, username, password=PASSWORD):
        return self.client.post("/api/register", json={"username": username, "password": password})

    def log_in(self, username, password=PASSWORD):
        return self.client.post("/api/login", json={"username": username, "password": password})


@pytest.fixture
def accounts(client):
    return Accounts(client)


@pytest.fixture
def alice(client, accounts):
    """The client, with alice registered and logged in."""
    assert accounts.register("alice").status_code == 201
    assert accounts.log_in("alice").status_code == 200
    return client
