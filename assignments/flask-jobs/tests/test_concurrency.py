"""Concurrency under four Gunicorn sync workers and the Celery worker (two processes).

PYTEST_DONT_REWRITE (see conftest.py). Requests are released together from many threads, each on its own
connection, so they spread over all four worker processes. For the 30 imports the grader adds, after
`db upgrade`, a deferred constraint trigger on imports that sleeps 0.2 s inside each COMMIT inserting an
import: a task queued before its import's transaction commits then finds no import, every time.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from conftest import (
    describe,
    expect_status,
    first_bad,
    import_summary,
    json_of,
    summarize,
    tag,
    unique_name,
)

from grader.errors import BootFailed
from harness.client import fire_concurrently

TOKEN_BATCH = 20
REGISTRATION_ROUNDS, REGISTRATIONS = 2, 20
USERS, IMPORTS_PER_USER, ROWS = 3, 10, 200
DONE_WITHIN_S = 60
POLL_S = 0.5

_SLOW_COMMIT = [
    "CREATE OR REPLACE FUNCTION grader_slow_commit() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN PERFORM pg_sleep(0.2); RETURN NULL; END $$",
    "DROP TRIGGER IF EXISTS grader_slow_commit ON imports",
    "CREATE CONSTRAINT TRIGGER grader_slow_commit AFTER INSERT ON imports DEFERRABLE INITIALLY DEFERRED "
    "FOR EACH ROW EXECUTE FUNCTION grader_slow_commit()",
    "SELECT count(*) FROM pg_trigger WHERE tgname = 'grader_slow_commit'",
]


def test_token_valid_on_every_worker(user):
    """One token is accepted by every worker: 20 parallel GET /api/me all answer 200 with its user."""
    responses = fire_concurrently(TOKEN_BATCH, lambda i: user.clone().get("/api/me"))
    failures = [r for r in responses if isinstance(r, BaseException) or r.status_code != 200]
    assert not failures, (
        f"{len(failures)} of {len(responses)} parallel GET /api/me with one token were refused "
        f"(statuses: {summarize(failures)}), e.g. {describe(failures[0])}: a token must be valid on every worker "
        "process (JWT_SECRET_KEY from the environment, nothing kept in process memory)"
    )
    wrong = [r for r in responses if json_of(r, "GET /api/me").get("username") != user.username]
    assert not wrong, f"parallel GET /api/me answered another user than {user.username!r}: {describe(wrong[0])}"


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
        winner = codes.index(201)
        token = make_client().post("/api/token", json={"username": name, "password": f"password-{winner:03d}"})
        expect_status(
            token, 200, f"round {round_number}: POST /api/token as {name!r} with the password of the registration that won"
        )


def _slow_commits(app_control) -> None:
    """The deferred trigger that makes every COMMIT inserting an import take 0.2 s longer (once per database)."""
    installed = app_control.sql(*[(statement, []) for statement in _SLOW_COMMIT])
    assert installed and installed[0][0] == 1, "the grader could not add its slow-commit trigger to the imports table"


def _rows(user_index: int, import_index: int, label: str) -> list[tuple[str, str, str]]:
    return [
        (f"u{user_index}i{import_index}r{r}.{label}@example.com", f"Name {user_index}-{import_index}-{r}",
         f"{r}.{(r * 7) % 100:02d}")
        for r in range(1, ROWS + 1)
    ]


def _csv(rows: list[tuple[str, str, str]]) -> str:
    return "email,name,amount\n" + "".join(f"{e},{n},{a}\n" for e, n, a in rows)


@pytest.mark.timeout(240)
def test_thirty_concurrent_imports_by_three_users(client, app_control, shared_users):
    """30 imports posted at once by 3 users: all 202, all done within 60 s, each record once with its values."""
    _slow_commits(app_control)
    try:
        app_control.worker.ensure()
    except BootFailed as exc:
        raise AssertionError(f"the Celery worker did not become ready: {exc.reason}") from None
    users = [shared_users.take() for _ in range(USERS)]
    label = tag()
    jobs = [(u, i) for u in range(USERS) for i in range(IMPORTS_PER_USER)]
    rows = {job: _rows(job[0], job[1], label) for job in jobs}

    def post(index: int):
        owner, number = jobs[index]
        return users[owner].clone().post(
            "/api/imports", json={"filename": f"{label}-{owner}-{number}.csv", "csv": _csv(rows[jobs[index]])}
        )

    responses = fire_concurrently(len(jobs), post)
    last_answer = time.monotonic()
    accepted = [r for r in responses if not isinstance(r, BaseException) and r.status_code == 202]
    assert len(accepted) == len(jobs), (
        f"{len(jobs)} concurrent POST /api/imports by {USERS} users should all answer 202, got {summarize(responses)}; "
        f"e.g. {first_bad(responses, (202,))}"
    )
    ids = [json_of(r, "POST /api/imports").get("id") for r in responses]
    assert len(set(ids)) == len(ids), f"concurrent POST /api/imports returned duplicate import ids: {sorted(ids, key=str)}"
    by_id = dict(zip(ids, jobs, strict=True))

    latest: dict = {}
    errors: list[str] = []
    while True:
        for agent in users:
            try:
                listing = agent.get("/api/imports")
            except Exception as exc:  # an unanswered poll is reported, like a 5xx
                listing = exc
            if isinstance(listing, BaseException) or listing.status_code >= 500:
                errors.append(describe(listing))
                continue
            body = listing.json() if listing.status_code == 200 else []
            for item in body if isinstance(body, list) else []:
                if isinstance(item, dict) and item.get("id") in by_id:
                    latest[item["id"]] = item
        finished = [i for i in ids if latest.get(i, {}).get("status") in ("done", "failed")]
        if len(finished) == len(ids) or time.monotonic() - last_answer > DONE_WITHIN_S or len(errors) > 10:
            break
        time.sleep(POLL_S)
    assert not errors, f"polling GET /api/imports while the imports ran got answers of 5xx or none: {errors[0]}"
    late = [i for i in ids if latest.get(i, {}).get("status") != "done"]
    assert not late, (
        f"{len(late)} of {len(ids)} imports were not done within {DONE_WITHIN_S} s of the last 202 "
        f"(statuses: {summarize_statuses(latest, late)}), e.g. import {late[0]}: {import_summary(latest.get(late[0]))}"
        + (": a task that finds no import (queued before its transaction committed) leaves it pending for ever"
           if any(latest.get(i, {}).get("status") == "pending" for i in late) else "")
    )
    short = [i for i in ids if latest[i].get("record_count") != ROWS]
    assert not short, (
        f"{len(short)} done imports do not have record_count {ROWS}, e.g. import {short[0]}: {import_summary(latest[short[0]])}"
    )

    counts = app_control.sql((
        "SELECT count(*), count(DISTINCT (import_id, row_no)) FROM records WHERE import_id = ANY(%s)", [ids],
    ))[0]
    assert counts[0] == counts[1] == len(ids) * ROWS, (
        f"records of the {len(ids)} imports: {counts[0]} rows, {counts[1]} distinct (import_id, row_no); expected "
        f"{len(ids) * ROWS}, each pair exactly once"
        + (" (the same row stored twice: a task ran twice, or two processes took one import)" if counts[0] > counts[1] else "")
    )
    stored = app_control.sql((
        "SELECT import_id, row_no, email, name, amount::text FROM records WHERE import_id = ANY(%s) ORDER BY 1, 2", [ids],
    ))
    wrong = []
    for import_id, row_no, email, name, amount in stored:
        posted = rows[by_id[import_id]][row_no - 1] if 1 <= row_no <= ROWS else None
        if posted is None or (email, name, Decimal(amount)) != (posted[0], posted[1], Decimal(posted[2])):
            wrong.append(f"import {import_id} row {row_no}: stored ({email!r}, {name!r}, {amount!r}), posted {posted!r}")
    assert not wrong, f"{len(wrong)} stored records differ from the posted rows: " + "; ".join(wrong[:3])

    for owner, agent in enumerate(users):
        response = agent.get("/api/imports")
        expect_status(response, 200, f"GET /api/imports of {agent.username!r}")
        listed = json_of(response, "GET /api/imports")
        got = {item.get("id") for item in listed if isinstance(item, dict)} if isinstance(listed, list) else set()
        expected = {i for i, job in by_id.items() if job[0] == owner}
        assert expected <= got and not (got & (set(ids) - expected)), (
            f"GET /api/imports of {agent.username!r} should list exactly its {len(expected)} imports of the 30: "
            f"missing {sorted(expected - got)}, other users' {sorted(got & (set(ids) - expected))}"
        )


def summarize_statuses(latest: dict, ids: list) -> str:
    counts: dict[str, int] = {}
    for import_id in ids:
        status = str(latest.get(import_id, {}).get("status", "never listed"))
        counts[status] = counts.get(status, 0) + 1
    return ", ".join(f"{status} x{count}" for status, count in sorted(counts.items()))
