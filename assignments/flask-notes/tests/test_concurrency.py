"""Concurrency under four Gunicorn sync workers: shared sessions, atomic updates, unique names.

PYTEST_DONT_REWRITE (see conftest.py). Requests are released together from many threads, each on
its own connection, so they spread over all four worker processes. Users come from the users shared
with other tests (see conftest.py), each logged in once, on whichever worker took that login.
"""

from __future__ import annotations

from conftest import (
    create_note,
    describe,
    expect_status,
    first_bad,
    json_of,
    summarize,
    unique_name,
)

from harness.client import fire_concurrently

# One batch is plenty: with a per-process secret some 15 to 19 of 20 requests are refused, even
# just after the app has booted (measured against solutions/per-process-secret).
SESSION_BATCH = 20
LIKE_ROUNDS, LIKES = 2, 50
REGISTRATION_ROUNDS, REGISTRATIONS = 2, 20
USERS, NOTES_PER_USER = 5, 8


def test_session_valid_on_every_worker(user):
    """A session made by one login request is accepted by every worker (no per-process secret or sessions)."""
    client, username = user
    paths = ("/api/me", "/api/notes")
    responses = fire_concurrently(SESSION_BATCH, lambda i: client.clone().get(paths[i % 2]))
    failures = [r for r in responses if isinstance(r, BaseException) or r.status_code != 200]
    assert not failures, (
        f"{len(failures)} of {len(responses)} requests with the session from one login were refused "
        f"(statuses: {summarize(failures)}), e.g. {describe(failures[0])}: a session must be valid on every "
        "worker process (SECRET_KEY from the environment, sessions not kept in process memory)"
    )


def test_concurrent_likes_are_all_counted(user):
    """50 concurrent likes on one note leave likes == 50 (no lost updates), in each of two rounds."""
    client, _ = user
    for round_number in range(1, LIKE_ROUNDS + 1):
        note = create_note(client, f"liked {round_number}", "a b c")
        path = f"/api/notes/{note['id']}/like"
        responses = fire_concurrently(LIKES, lambda i, path=path: client.clone().post(path))
        ok = [r for r in responses if not isinstance(r, BaseException) and r.status_code == 200]
        assert len(ok) == LIKES, (
            f"round {round_number}: {LIKES} concurrent POST {path} should all answer 200, got {summarize(responses)}; "
            f"e.g. {first_bad(responses, (200,))}"
        )
        final = client.get(f"/api/notes/{note['id']}")
        expect_status(final, 200, f"GET /api/notes/<id> after {LIKES} concurrent likes")
        likes = json_of(final, "GET /api/notes/<id>").get("likes")
        assert likes == LIKES, (
            f"round {round_number}: after {LIKES} concurrent likes (all answered 200) the note has likes == {likes!r}, "
            f"expected {LIKES}: concurrent likes were lost (the increment must be atomic in the database)"
        )


def test_concurrent_registrations_of_one_name(make_client):
    """20 concurrent registrations of one username give exactly one 201 and nineteen 409, no 5xx, twice over."""
    for round_number in range(1, REGISTRATION_ROUNDS + 1):
        name = unique_name("race")
        responses = fire_concurrently(
            REGISTRATIONS,
            lambda i, name=name: make_client().post("/api/register", json={"username": name, "password": f"password-{i:03d}"}),
        )
        codes = [r.status_code if not isinstance(r, BaseException) else None for r in responses]
        assert codes.count(201) == 1 and codes.count(409) == REGISTRATIONS - 1, (
            f"round {round_number}: {REGISTRATIONS} concurrent POST /api/register of {name!r} should give one 201 and "
            f"{REGISTRATIONS - 1} 409, got {summarize(responses)}; e.g. {first_bad(responses, (201, 409))}"
        )
        winner = responses[codes.index(201)]
        login = make_client().post("/api/login", json={"username": name, "password": f"password-{codes.index(201):03d}"})
        expect_status(
            login, 200, f"round {round_number}: logging in as {name!r} with the password of the one registration that won"
        )
        assert json_of(winner, "POST /api/register").get("username") == name, describe(winner)


def test_concurrent_note_creation_by_several_users(shared_users):
    """5 users creating 8 notes each, all at once: every note is created (201, no 5xx) and listed for its owner."""
    users = [(agent, shared.username) for agent, shared in (shared_users.take() for _ in range(USERS))]
    jobs = [(u, n) for u in range(USERS) for n in range(NOTES_PER_USER)]

    def create(i: int):
        owner, number = jobs[i]
        agent, username = users[owner]
        return agent.clone().post("/api/notes", json={"title": f"{username} note {number}", "body": f"body {number}"})

    responses = fire_concurrently(len(jobs), create)
    created = [r for r in responses if not isinstance(r, BaseException) and r.status_code == 201]
    assert len(created) == len(jobs), (
        f"{len(jobs)} concurrent POST /api/notes by {USERS} users should all answer 201, got {summarize(responses)}; "
        f"e.g. {first_bad(responses, (201,))}"
    )
    ids = [json_of(r, "POST /api/notes").get("id") for r in responses]
    assert len(set(ids)) == len(ids), f"concurrent POST /api/notes returned duplicate note ids: {sorted(ids, key=str)}"
    for owner, (agent, username) in enumerate(users):
        expected = {ids[i] for i, (o, _) in enumerate(jobs) if o == owner}
        response = agent.get("/api/notes")
        expect_status(response, 200, f"GET /api/notes of {username!r}")
        listed = json_of(response, "GET /api/notes")
        got = {note.get("id") for note in listed if isinstance(note, dict)} if isinstance(listed, list) else set()
        missing = expected - got
        assert not missing, (
            f"GET /api/notes of {username!r} after concurrent creation lacks {len(missing)} of its "
            f"{len(expected)} notes: ids {sorted(missing, key=str)} were answered 201 but are not listed for their owner"
        )
