"""Concurrency under four Gunicorn sync workers."""

from conftest import describe, unique_name
from harness.client import fire_concurrently


def test_session_valid_on_every_worker(user):
    """A session cookie made by one request is accepted by every worker."""
    client, username = user
    responses = fire_concurrently(40, lambda i: client.clone().get("/api/me"))
    bad = [r for r in responses if isinstance(r, Exception) or r.status_code != 200]
    assert not bad, f"{len(bad)} of 40 GET /api/me with a valid session failed, e.g. {bad[0] if isinstance(bad[0], Exception) else describe(bad[0])}"


def test_concurrent_likes_all_counted(user):
    """50 concurrent likes on one note leave likes == 50."""
    client, _ = user
    note = client.post("/api/notes", json={"title": "liked", "body": "a b c"})
    assert note.status_code == 201, f"POST /api/notes expected 201, {describe(note)}"
    note_id = note.json()["id"]
    fire_concurrently(50, lambda i: client.clone().post(f"/api/notes/{note_id}/like"))
    final = client.get(f"/api/notes/{note_id}")
    assert final.json().get("likes") == 50, f"expected likes == 50 after 50 concurrent likes, {describe(final)}"


def test_concurrent_registrations_one_wins(make_client):
    """20 concurrent registrations of one name: one 201, the rest 409, no 5xx."""
    name = unique_name()
    responses = fire_concurrently(
        20, lambda i: make_client().post("/api/register", json={"username": name, "password": "password-123"})
    )
    codes = sorted(r.status_code if not isinstance(r, Exception) else -1 for r in responses)
    assert codes.count(201) == 1 and codes.count(409) == 19, f"expected one 201 and nineteen 409, got {codes}"
