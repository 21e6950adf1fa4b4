"""Web fixtures: the app over a temporary database and a tiny assignment, with the queue replaced by a list."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from grader.db.engine import open_store
from grader.db.store import Store
from grader.settings import Settings
from grader.web import create_app
from grader.web.invitations import Invitations
from grader.web.tokens import ApiTokens
from grader.web.users import Role, Users
from tests.integration.test_queue import write_tiny_assignment

PASSWORD = "correct horse battery"


@pytest.fixture
def tiny_dir(short_tmp: Path) -> Path:
    """An assignments folder holding only `tiny` (the queue tests' one-test-per-category assignment)."""
    return write_tiny_assignment(short_tmp, "# Tiny\n\nServe hello at / and 42 at /answer. <script>alert(1)</script>\n")


@pytest.fixture
def web_settings(settings: Settings, tiny_dir: Path) -> Settings:
    return settings.replace(assignments_dir=tiny_dir, secret_key="test-key", submit_interval_s=0)


@pytest.fixture
def store(web_settings: Settings) -> Store:
    return open_store(web_settings)


@pytest.fixture
def enqueued() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def app(web_settings: Settings, store: Store, enqueued: list[tuple[str, str]]) -> Flask:
    app = create_app(web_settings, store=store, enqueue=lambda sid, jid: enqueued.append((sid, jid)))
    app.config["TESTING"] = True
    return app


@pytest.fixture
def users(store: Store) -> Users:
    return Users(store.engine)


@pytest.fixture
def tokens(store: Store) -> ApiTokens:
    return ApiTokens(store.engine)


@pytest.fixture
def invitations(store: Store) -> Invitations:
    return Invitations(store.engine)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


@pytest.fixture
def signed_in(app: Flask, users: Users):
    """A new test client, logged in as a new staff user: for tests with several users at once."""

    def run(email: str, role: Role = Role.reviewer) -> FlaskClient:
        client = app.test_client()
        users.create_user(email, PASSWORD, role)
        token = csrf_of(client.get("/login").get_data(as_text=True))
        assert client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token}).status_code == 302
        return client

    return run


@pytest.fixture
def login(client: FlaskClient, users: Users):
    """Log the test client in as a new user of a role."""

    def run(role: Role = Role.reviewer, email: str | None = None) -> None:
        email = email or f"{role.value}@example.com"
        if users.user_by_email(email) is None:
            users.create_user(email, PASSWORD, role)
        token = csrf_of(client.get("/login").get_data(as_text=True))
        response = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
        assert response.status_code == 302, response.get_data(as_text=True)

    return run
