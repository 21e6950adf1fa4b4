"""Helpers shared by the flask-notes hidden suites."""

from __future__ import annotations

import uuid

import pytest

PASSWORD = "correct-horse-42"


def describe(response) -> str:
    """Status, Location, content type and a body excerpt, for failure messages a reviewer can read."""
    body = response.text[:200].replace("\n", " ")
    location = response.headers.get("Location")
    return (
        f"got {response.status_code}"
        + (f", Location {location!r}" if location else "")
        + f", Content-Type {response.headers.get('Content-Type')!r}, body {body!r}"
    )


def unique_name(prefix: str = "u") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def register(client, username: str | None = None, password: str = PASSWORD):
    username = username or unique_name()
    response = client.post("/api/register", json={"username": username, "password": password})
    assert response.status_code == 201, f"POST /api/register expected 201, {describe(response)}"
    return username, response.json()


def login(client, username: str, password: str = PASSWORD):
    response = client.post("/api/login", json={"username": username, "password": password})
    assert response.status_code == 200, f"POST /api/login expected 200, {describe(response)}"
    return response


@pytest.fixture
def user(client):
    """A registered and logged-in user: (client, username)."""
    username, _ = register(client)
    login(client, username)
    return client, username
