"""Helpers shared by the flask-notes hidden suites.

PYTEST_DONT_REWRITE: failure messages are written for a hiring team, so pytest's assertion
introspection (object reprs of responses) is turned off in every module of this suite; each
assertion carries its own message saying what was expected and what came back.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from requests.cookies import RequestsCookieJar

from harness import pages
from harness.pages import (  # noqa: F401 (re-exported: the test modules import these from conftest)
    SANDBOX_HOST,
    SANDBOX_ORIGIN,
    answer,
    csrf_fields,
    form_with,
    is_html,
    is_json,
    next_param,
    request_line,
    summarize,
)

PASSWORD = "correct-horse-42"
_EXCERPT = 240


# --- describing what came back ------------------------------------------------------------------


def describe(response) -> str:
    """What a response was: request line, status, Location, content type and a body excerpt."""
    if isinstance(response, BaseException):
        return f"no HTTP answer ({type(response).__name__}: {str(response)[:_EXCERPT]})"
    text = " ".join(response.text.split())
    body = text if len(text) <= _EXCERPT else text[:_EXCERPT] + "…"
    location = response.headers.get("Location")
    return (
        f"got {request_line(response)} -> {response.status_code}"
        + (f", Location {location!r}" if location else "")
        + f", Content-Type {response.headers.get('Content-Type')!r}, body {body!r}"
    )


def expect_status(response, expected: int | tuple[int, ...], what: str) -> None:
    """Fail with a readable message unless the status is one of `expected`."""
    allowed = expected if isinstance(expected, tuple) else (expected,)
    wanted = " or ".join(str(code) for code in allowed)
    assert response.status_code in allowed, f"{what}: expected {wanted}; {describe(response)}"


def json_of(response, what: str) -> Any:
    return pages.json_of(response, what, describe)


def first_bad(responses: list[Any], ok: tuple[int, ...]) -> str:
    return pages.first_bad(responses, ok, describe)


# --- users, sessions, notes ---------------------------------------------------------------------


def unique_name(prefix: str = "u") -> str:
    """A fresh valid username (letters, digits, underscore; well under 32 characters)."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def register(client, username: str | None = None, password: str = PASSWORD) -> tuple[str, dict]:
    username = username or unique_name()
    response = client.post("/api/register", json={"username": username, "password": password})
    expect_status(response, 201, f"registering a new user {username!r}")
    return username, json_of(response, "POST /api/register")


def login(client, username: str, password: str = PASSWORD):
    response = client.post("/api/login", json={"username": username, "password": password})
    expect_status(response, 200, f"logging in as {username!r} with the right password")
    return response


def authenticated_as(client) -> str | None:
    """The username GET /api/me reports for this client, or None when it is not logged in."""
    response = client.get("/api/me")
    if response.status_code != 200 or not is_json(response):
        return None
    body = response.json()
    return body.get("username") if isinstance(body, dict) else None


def tamper_session(client, real) -> None:
    """Give `client` the cookies of the logged-in `real`, each with its last characters changed (a forged session)."""
    jar = list(real.cookies)
    assert jar, "logging in through POST /api/login left no cookie to tamper with"
    for cookie in jar:
        value = cookie.value or ""
        tail = "".join("A" if ch != "A" else "B" for ch in value[-4:])
        client.cookies.set(cookie.name, value[:-4] + tail, domain=cookie.domain, path=cookie.path)


def create_note(client, title: str, body: str = "") -> dict:
    response = client.post("/api/notes", json={"title": title, "body": body})
    expect_status(response, 201, f"creating a note titled {title!r}")
    note = json_of(response, "POST /api/notes")
    assert isinstance(note, dict) and note.get("id") is not None, (
        f"POST /api/notes: expected a note object with an id; {describe(response)}"
    )
    return note


def new_user(make_client) -> tuple[Any, str]:
    """Another registered and logged-in user agent of the test's own: (client, username)."""
    other = make_client()
    username, _ = register(other)
    login(other, username)
    return other, username


# --- users shared by the tests of one app -------------------------------------------------------
#
# Every registration and login costs the app a password hash (about 0.1 s with scrypt), so tests
# that only need "a logged-in user", and leave that user's login state alone, share a few users
# registered and logged in once per app container. Each test gets its own user agent holding a
# copy of the shared user's cookies (its own request history, its own cookie updates), and checks
# nothing about the notes it did not create itself. Tests about registration, login, logout, cookies
# and password storage make their own accounts, or their own login session of a shared account.


@dataclass
class SharedUser:
    """A user registered with PASSWORD and logged in once; `cookies` is the session that login gave."""

    username: str
    id: Any
    cookies: RequestsCookieJar


class _SharedUserPool:
    """The session's shared users, for the app container they were registered in."""

    def __init__(self) -> None:
        self.container: str | None = None
        self.users: list[SharedUser] = []

    def get(self, index: int, agent: Any, app_control: Any) -> SharedUser:
        """Shared user number `index`, its cookies copied into `agent`.

        A new app container has a new, empty database: the users are registered again. A shared
        user whose session no longer opens GET /api/me (the database was emptied, the session was
        ended, or /api/me itself is broken) is replaced by a newly registered one, so a flaw costs
        time here at worst, never a failure of a test that does not name it.
        """
        container = app_control.pod.app_container
        if container != self.container:
            self.container, self.users = container, []
        if index < len(self.users):
            shared = self.users[index]
            agent.cookies.update(shared.cookies)
            if authenticated_as(agent) == shared.username:
                return shared
            agent.cookies.clear()
        username, registered = register(agent)
        login(agent, username)
        shared = SharedUser(username, registered.get("id") if isinstance(registered, dict) else None, agent.cookies.copy())
        self.users[index : index + 1] = [shared]
        return shared


@pytest.fixture(scope="session")
def _shared_user_pool() -> _SharedUserPool:
    return _SharedUserPool()


class SharedUsers:
    """One test's access to the shared users: each take() gives a different one."""

    def __init__(self, pool: _SharedUserPool, client: Any, app_control: Any) -> None:
        self._pool, self._client, self._app_control = pool, client, app_control
        self._taken = 0

    def take(self, agent: Any = None) -> tuple[Any, SharedUser]:
        """A logged-in shared user: (a user agent with its session, the user); a new agent unless given."""
        agent = agent if agent is not None else self._client.fresh()
        shared = self._pool.get(self._taken, agent, self._app_control)
        self._taken += 1
        return agent, shared


@pytest.fixture
def shared_users(client, app_control, _shared_user_pool) -> SharedUsers:
    """Registered, logged-in users shared with other tests (registered on first use, in the test)."""
    return SharedUsers(_shared_user_pool, client, app_control)


@pytest.fixture
def user(client, shared_users):
    """A logged-in user, shared with other tests: (client, username). Its notes include other tests' notes."""
    _, shared = shared_users.take(client)
    return client, shared.username


# --- HTML forms and redirects -------------------------------------------------------------------


def browser_login(client, username: str, password: str = PASSWORD, next_url: str | None = None):
    return pages.browser_login(client, username, password, next_url, expect_status)


def resolve_location(response) -> Any:
    """Where a browser goes for this redirect: tabs/newlines dropped, backslashes read as slashes."""
    raw = response.headers.get("Location", "")
    cleaned = re.sub(r"[\t\r\n]", "", raw).replace("\\", "/")
    base = SANDBOX_ORIGIN + urlsplit(response.request.url).path
    return urlsplit(urljoin(base, cleaned))


def location_is_local(response) -> bool:
    return resolve_location(response).netloc.lower() == SANDBOX_HOST


# --- the database, read with the harness's own SQL ----------------------------------------------


def table_columns(app_control, table: str) -> list[dict[str, Any]]:
    """PRAGMA table_info as dicts: name, type, notnull, default, pk; [] when the table is missing."""
    rows = app_control.sql(f'PRAGMA table_info("{table}")')
    return [
        {"name": row[1], "type": (row[2] or "").upper(), "notnull": bool(row[3]), "default": row[4], "pk": row[5]} for row in rows
    ]


def table_names(app_control) -> set[str]:
    return {row[0] for row in app_control.sql("SELECT name FROM sqlite_master WHERE type = 'table'")}


def readable(column: str) -> str:
    """A SELECT expression that keeps BLOBs JSON-safe (as 'blob:HEX')."""
    return f'CASE WHEN typeof("{column}") = \'blob\' THEN \'blob:\' || hex("{column}") ELSE "{column}" END'
