"""Helpers shared by the flask-notes hidden suites.

PYTEST_DONT_REWRITE: failure messages are written for a hiring team, so pytest's assertion
introspection (object reprs of responses) is turned off in every module of this suite; each
assertion carries its own message saying what was expected and what came back.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
from requests.cookies import RequestsCookieJar

PASSWORD = "correct-horse-42"
SANDBOX_HOST = "app.sandbox"
SANDBOX_ORIGIN = f"https://{SANDBOX_HOST}"
_EXCERPT = 240


# --- describing what came back ------------------------------------------------------------------


def _request_line(response) -> str:
    request = getattr(response, "request", None)
    if request is None or not getattr(request, "url", None):
        return "the request"
    parts = urlsplit(request.url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return f"{request.method} {target}"


def describe(response) -> str:
    """What a response was: request line, status, Location, content type and a body excerpt."""
    if isinstance(response, BaseException):
        return f"no HTTP answer ({type(response).__name__}: {str(response)[:_EXCERPT]})"
    text = " ".join(response.text.split())
    body = text if len(text) <= _EXCERPT else text[:_EXCERPT] + "…"
    location = response.headers.get("Location")
    return (
        f"got {_request_line(response)} -> {response.status_code}"
        + (f", Location {location!r}" if location else "")
        + f", Content-Type {response.headers.get('Content-Type')!r}, body {body!r}"
    )


def answer(response, excerpt: int = 80) -> str:
    """A short form of describe() for lists of cases: status, content type and a body excerpt."""
    if isinstance(response, BaseException):
        return f"no HTTP answer ({type(response).__name__})"
    text = " ".join(response.text.split())
    body = text if len(text) <= excerpt else text[:excerpt] + "…"
    return f"got {response.status_code} ({response.headers.get('Content-Type')}) {body!r}"


def expect_status(response, expected: int | tuple[int, ...], what: str) -> None:
    """Fail with a readable message unless the status is one of `expected`."""
    allowed = expected if isinstance(expected, tuple) else (expected,)
    wanted = " or ".join(str(code) for code in allowed)
    assert response.status_code in allowed, f"{what}: expected {wanted}; {describe(response)}"


def json_of(response, what: str) -> Any:
    """The JSON body, or a failure saying the body was not JSON."""
    try:
        return response.json()
    except ValueError:
        raise AssertionError(f"{what}: expected a JSON body; {describe(response)}") from None


def is_json(response) -> bool:
    return response.headers.get("Content-Type", "").split(";")[0].strip().lower() == "application/json"


def summarize(responses: list[Any]) -> str:
    """Status codes of many responses as counts, e.g. '201 x1, 409 x18, 500 x1'."""
    counts: dict[str, int] = {}
    for response in responses:
        key = type(response).__name__ if isinstance(response, BaseException) else str(response.status_code)
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{key} x{count}" for key, count in sorted(counts.items()))


def first_bad(responses: list[Any], ok: tuple[int, ...]) -> str:
    """A description of the first response whose status is not in `ok`."""
    for response in responses:
        if isinstance(response, BaseException) or response.status_code not in ok:
            return describe(response)
    return "none"


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


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict[str, Any]] = []
        self.inputs: list[dict[str, str]] = []
        self._current: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name.lower(): (value or "") for name, value in attrs}
        if tag == "form":
            self._current = {"action": attributes.get("action", ""), "method": attributes.get("method", "get"), "inputs": []}
            self.forms.append(self._current)
        elif tag in ("input", "textarea", "select", "button"):
            field = {
                "tag": tag,
                "name": attributes.get("name", ""),
                "type": attributes.get("type", "").lower(),
                "value": attributes.get("value", ""),
            }
            self.inputs.append(field)
            if self._current is not None:
                self._current["inputs"].append(field)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def parse_html(html: str) -> _FormParser:
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    return parser


def form_with(html: str, *names: str) -> dict[str, Any] | None:
    """The first form holding inputs with all `names`, or None."""
    for form in parse_html(html).forms:
        present = {field["name"] for field in form["inputs"]}
        if all(name in present for name in names):
            return form
    return None


def csrf_fields(html: str) -> dict[str, str]:
    """{'csrf_token': value} when the page carries a hidden csrf_token input, else {}."""
    for field in parse_html(html).inputs:
        if field["name"] == "csrf_token":
            return {"csrf_token": field["value"]}
    return {}


def is_html(response) -> bool:
    return response.headers.get("Content-Type", "").split(";")[0].strip().lower() == "text/html"


def browser_login(client, username: str, password: str = PASSWORD, next_url: str | None = None):
    """GET /login then POST /login with form data, as a browser would; `next` goes in query and form."""
    query = "" if next_url is None else "?" + urlencode({"next": next_url})
    page = client.get("/login" + query)
    expect_status(page, 200, "GET /login (the login form)")
    data = {**csrf_fields(page.text), "username": username, "password": password}
    if next_url is not None:
        data["next"] = next_url
    return client.post("/login" + query, data=data)


def resolve_location(response) -> Any:
    """Where a browser goes for this redirect: tabs/newlines dropped, backslashes read as slashes."""
    raw = response.headers.get("Location", "")
    cleaned = re.sub(r"[\t\r\n]", "", raw).replace("\\", "/")
    base = SANDBOX_ORIGIN + urlsplit(response.request.url).path
    return urlsplit(urljoin(base, cleaned))


def location_is_local(response) -> bool:
    return resolve_location(response).netloc.lower() == SANDBOX_HOST


def next_param(location) -> list[str]:
    return parse_qs(location.query).get("next", [])


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
