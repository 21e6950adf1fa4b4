"""Helpers shared by the flask-jobs hidden suites.

PYTEST_DONT_REWRITE: failure messages are written for a hiring team, so pytest's assertion
introspection (object reprs of responses) is turned off in every module of this suite; each
assertion carries its own message saying what was expected and what came back.

Everything is black-box: HTTP through Nginx (`Host: app.sandbox` unless a test sends a host of its own),
the Flask CLI through `app_control.flask`, and the app's PostgreSQL database read, written and locked with
the grader's own SQL (`app_control.sql`, `app_control.hold`, `%s` parameters). Tokens are checked and forged
by hand (HS256 is an HMAC-SHA256): the grader's environment has no JWT library.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
import requests

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
FINAL = ("done", "failed")


# --- describing what came back ------------------------------------------------------------------


def describe(response) -> str:
    """What a response was: request line, status, Location, WWW-Authenticate, content type and a body excerpt."""
    if isinstance(response, BaseException):
        return f"no HTTP answer ({type(response).__name__}: {str(response)[:_EXCERPT]})"
    text = " ".join(response.text.split())
    body = text if len(text) <= _EXCERPT else text[:_EXCERPT] + "…"
    location = response.headers.get("Location")
    challenge = response.headers.get("WWW-Authenticate")
    return (
        f"got {request_line(response)} -> {response.status_code}"
        + (f", Location {location!r}" if location else "")
        + (f", WWW-Authenticate {challenge!r}" if challenge else "")
        + f", Content-Type {response.headers.get('Content-Type')!r}, body {body!r}"
    )


def expect_status(response, expected: int | tuple[int, ...], what: str) -> None:
    """Fail with a readable message unless the status is one of `expected`."""
    allowed = expected if isinstance(expected, tuple) else (expected,)
    wanted = " or ".join(str(code) for code in allowed)
    if isinstance(response, BaseException):
        raise AssertionError(f"{what}: expected {wanted}; {describe(response)}")
    assert response.status_code in allowed, f"{what}: expected {wanted}; {describe(response)}"


def json_of(response, what: str) -> Any:
    return pages.json_of(response, what, describe)


def first_bad(responses: list[Any], ok: tuple[int, ...]) -> str:
    return pages.first_bad(responses, ok, describe)


# --- the app's environment (drawn per app instance) ---------------------------------------------

_ENVIRONMENTS: dict[str, dict[str, str]] = {}


def app_env(app_control) -> dict[str, str]:
    """The app's environment as the grader set it (secrets, token lifetime, error cap), once per app container."""
    container = app_control.pod.app_container
    if container not in _ENVIRONMENTS:
        _ENVIRONMENTS[container] = app_control.environment
    return _ENVIRONMENTS[container]


def token_lifetime(app_control) -> int:
    return int(app_env(app_control)["JWT_ACCESS_TOKEN_EXPIRES"])


def max_errors(app_control) -> int:
    return int(app_env(app_control)["IMPORT_MAX_ERRORS"])


# --- JWT by hand: HS256 is HMAC-SHA256 over `header.payload` --------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Jwt:
    """A token taken apart: its header and payload as JSON objects, the signature's bytes."""

    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: str
    signature: bytes


def parse_jwt(token: str, what: str = "the access token") -> Jwt:
    """The token's parts, or a failure saying why it is not a JWT (three base64url parts, JSON objects)."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        raise AssertionError(f"{what} is not a JWT (three base64url parts separated by dots): {str(token)[:80]!r}")
    try:
        header, payload = (json.loads(b64url_decode(part)) for part in parts[:2])
        signature = b64url_decode(parts[2])
    except (ValueError, UnicodeDecodeError):
        raise AssertionError(f"{what} is not a JWT: its parts are not base64url-encoded JSON: {token[:80]!r}") from None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise AssertionError(f"{what} is not a JWT: its header and payload must be JSON objects: {token[:80]!r}")
    return Jwt(header, payload, f"{parts[0]}.{parts[1]}", signature)


def hs256(signing_input: str, key: str) -> bytes:
    return hmac.new(key.encode("utf-8"), signing_input.encode("ascii"), hashlib.sha256).digest()


def _segment(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def sign_jwt(header: dict[str, Any], payload: dict[str, Any], key: str) -> str:
    """A token of this header and payload signed with HS256 and `key`."""
    signing_input = f"{_segment(header)}.{_segment(payload)}"
    return f"{signing_input}.{b64url(hs256(signing_input, key))}"


def unsigned_jwt(payload: dict[str, Any]) -> str:
    """`alg: none` with an empty signature, the classic forgery."""
    return f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(payload)}."


def moved_back(payload: dict[str, Any], seconds: int) -> dict[str, Any]:
    """The payload with iat, nbf and exp (those it has) moved `seconds` into the past."""
    return {k: (v - seconds if k in ("iat", "nbf", "exp") and isinstance(v, int) else v) for k, v in payload.items()}


# --- users and tokens ---------------------------------------------------------------------------


def unique_name(prefix: str = "u") -> str:
    """A fresh valid username (letters, digits, underscore; well under 32 characters)."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def register(client, username: str | None = None, password: str = PASSWORD) -> tuple[str, dict]:
    username = username or unique_name()
    response = client.post("/api/register", json={"username": username, "password": password})
    expect_status(response, 201, f"registering a new user {username!r}")
    return username, json_of(response, "POST /api/register")


def get_token(client, username: str, password: str = PASSWORD) -> str:
    response = client.post("/api/token", json={"username": username, "password": password})
    expect_status(response, 200, f"POST /api/token as {username!r} with the right password")
    body = json_of(response, "POST /api/token")
    token = body.get("access_token") if isinstance(body, dict) else None
    assert isinstance(token, str) and token, f"POST /api/token: expected an access_token string; {describe(response)}"
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class ApiUser:
    """A user agent that sends one user's bearer token with every request (unless told otherwise)."""

    client: Any
    username: str
    id: Any
    token: str

    def request(self, method: str, path: str, **kwargs: Any):
        headers = {**bearer(self.token), **(kwargs.pop("headers", None) or {})}
        return self.client.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any):
        return self.request("POST", path, **kwargs)

    def clone(self) -> ApiUser:
        """The same user on a connection of its own (for requests fired from several threads)."""
        return ApiUser(self.client.fresh(), self.username, self.id, self.token)


def new_api_user(client) -> ApiUser:
    """A newly registered user with a token of its own, on `client`."""
    username, body = register(client)
    return ApiUser(client, username, body.get("id") if isinstance(body, dict) else None, get_token(client, username))


def me(client, token: str) -> Any:
    """What GET /api/me says of this token: the JSON body when it answers 200, else None."""
    response = client.get("/api/me", headers=bearer(token))
    if response.status_code != 200 or not is_json(response):
        return None
    return response.json()


# --- users shared by the tests of one app -------------------------------------------------------
#
# Every registration and token costs the app a password hash, so tests that only need "a user with a token"
# share a few, registered once per app container (a new container has a new, empty database). A shared user
# whose token no longer opens GET /api/me is replaced, so a flaw costs time here at worst, never a failure of
# a test that does not name it. Tests about registration, tokens and passwords make their own accounts.


@dataclass
class SharedUser:
    username: str
    id: Any
    token: str


class _SharedUserPool:
    def __init__(self) -> None:
        self.container: str | None = None
        self.users: list[SharedUser] = []

    def get(self, index: int, client: Any, app_control: Any) -> SharedUser:
        container = app_control.pod.app_container
        if container != self.container:
            self.container, self.users = container, []
        if index < len(self.users):
            shared = self.users[index]
            body = me(client, shared.token)
            if isinstance(body, dict) and body.get("username") == shared.username:
                return shared
        user = new_api_user(client)
        shared = SharedUser(user.username, user.id, user.token)
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

    def take(self, client: Any = None) -> ApiUser:
        """A shared user with its token, on `client` or a new user agent."""
        agent = client if client is not None else self._client.fresh()
        shared = self._pool.get(self._taken, agent, self._app_control)
        self._taken += 1
        return ApiUser(agent, shared.username, shared.id, shared.token)


@pytest.fixture
def shared_users(client, app_control, _shared_user_pool) -> SharedUsers:
    """Registered users with tokens, shared with other tests (registered on first use, in the test)."""
    return SharedUsers(_shared_user_pool, client, app_control)


@pytest.fixture
def user(client, shared_users) -> ApiUser:
    """A shared user with a token, on the test's own client. Its imports include other tests' imports."""
    return shared_users.take(client)


# --- imports ------------------------------------------------------------------------------------

HEADER = "email,name,amount"


def tag() -> str:
    return uuid.uuid4().hex[:8]


def valid_rows(count: int, label: str) -> list[tuple[str, str, str]]:
    """`count` distinct valid rows (email, name, amount), unique to `label`."""
    return [(f"r{i}.{label}@example.com", f"Person {i} {label}", f"{i % 100000}.{i % 100:02d}") for i in range(1, count + 1)]


def csv_text(rows: list[tuple[str, str, str]], newline: str = "\n") -> str:
    return HEADER + newline + "".join(f"{e},{n},{a}{newline}" for e, n, a in rows)


def post_import(user: ApiUser, text: str, filename: str | None = "upload.csv", **kwargs: Any):
    body: dict[str, Any] = {"csv": text}
    if filename is not None:
        body["filename"] = filename
    return user.post("/api/imports", json=body, **kwargs)


def create_import(user: ApiUser, text: str, filename: str = "upload.csv") -> dict:
    """POST /api/imports; the import it answered 202 with."""
    try:
        response = post_import(user, text, filename)
    except requests.RequestException as exc:
        raise AssertionError(
            f"POST /api/imports of {filename!r} got no answer within the request time limit ({type(exc).__name__}): "
            "the request must only store the CSV and queue the task, never wait for the import to run"
        ) from None
    expect_status(response, 202, f"POST /api/imports of {filename!r}")
    body = json_of(response, "POST /api/imports")
    assert isinstance(body, dict) and body.get("id") is not None, (
        f"POST /api/imports: expected the import object with its id; {describe(response)}"
    )
    return body


@dataclass
class Watched:
    """What polling an import saw: its last state, every status seen in order, answers that were not 200."""

    last: dict
    statuses: list[str]
    bad: list[str]
    seconds: float

    @property
    def status(self) -> str | None:
        return self.last.get("status") if isinstance(self.last, dict) else None


def watch_import(user: ApiUser, import_id: Any, until: tuple[str, ...], timeout_s: float, interval_s: float = 0.5) -> Watched:
    """Poll GET /api/imports/<id> until its status is one of `until` or `timeout_s` passed."""
    started = time.monotonic()
    statuses: list[str] = []
    bad: list[str] = []
    last: dict = {}
    while True:
        try:
            response = user.get(f"/api/imports/{import_id}")
        except Exception as exc:  # a refused or timed-out poll is an answer to report, not a crash of the test
            response = exc
        if isinstance(response, BaseException) or response.status_code != 200 or not is_json(response):
            bad.append(describe(response))
        else:
            body = response.json()
            last = body if isinstance(body, dict) else {}
            status = last.get("status")
            if not statuses or statuses[-1] != status:
                statuses.append(str(status))
            if status in until:
                break
        if time.monotonic() - started >= timeout_s or len(bad) > 20:
            break
        time.sleep(interval_s)
    return Watched(last, statuses, bad, round(time.monotonic() - started, 1))


def import_summary(body: Any) -> str:
    if not isinstance(body, dict):
        return repr(body)[:300]
    keys = ("id", "status", "total_rows", "record_count", "invalid_rows", "error")
    text = ", ".join(f"{k}={body.get(k)!r}" for k in keys if k in body)
    errors = body.get("errors")
    if errors:
        text += f", errors={json.dumps(errors)[:200]}"
    return "{" + text + "}"


def records_of(app_control, import_id: Any) -> list[tuple[int, str, str, Decimal]]:
    """The import's records as the database holds them, in row order."""
    rows = app_control.sql((
        "SELECT row_no, email, name, amount::text FROM records WHERE import_id = %s ORDER BY row_no, email",
        [int(import_id)],
    ))
    return [(int(r[0]), r[1], r[2], Decimal(r[3])) for r in rows]


def record_count(app_control, import_id: Any) -> int:
    return int(app_control.sql(("SELECT count(*) FROM records WHERE import_id = %s", [int(import_id)]))[0][0])


def expected_records(rows: list[tuple[str, str, str]]) -> list[tuple[int, str, str, Decimal]]:
    return [(i, e.strip(), n.strip(), Decimal(a.strip())) for i, (e, n, a) in enumerate(rows, 1)]


def record_differences(found: list[tuple], expected: list[tuple], limit: int = 3) -> str:
    """What differs between the stored and the expected records, in a few words; "" when they are equal."""
    if found == expected:
        return ""
    have, want = {r[0]: r for r in found}, {r[0]: r for r in expected}
    duplicates = len(found) - len(have)
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    wrong = [n for n in sorted(set(have) & set(want)) if have[n] != want[n]]
    parts = [f"{len(found)} records stored, {len(expected)} expected"]
    if duplicates:
        parts.append(f"{duplicates} duplicate row_no")
    if missing:
        parts.append(f"row_no {missing[:limit]} missing")
    if extra:
        parts.append(f"row_no {extra[:limit]} not expected")
    for n in wrong[:limit]:
        parts.append(f"row {n} stored as {_record(have[n])}, expected {_record(want[n])}")
    return "; ".join(parts)


def _record(record: tuple) -> str:
    _, email, name, amount = record
    return f"({email!r}, {name!r}, {str(amount)!r})"


# --- HTML forms and redirects -------------------------------------------------------------------


def browser_login(client, username: str, password: str = PASSWORD, next_url: str | None = None):
    return pages.browser_login(client, username, password, next_url, expect_status)


def resolve_location(response, host: str = SANDBOX_HOST) -> Any:
    """Where a browser goes for this redirect: tabs/newlines dropped, backslashes read as slashes."""
    raw = response.headers.get("Location", "")
    cleaned = re.sub(r"[\t\r\n]", "", raw).replace("\\", "/")
    base = f"https://{host}" + urlsplit(response.request.url).path
    return urlsplit(urljoin(base, cleaned))


def location_is_local(response, host: str = SANDBOX_HOST) -> bool:
    location = resolve_location(response, host)
    return location.netloc.lower() in (host, f"{host}:443") and location.scheme == "https"


# --- the database, read with the grader's own SQL (PostgreSQL) -----------------------------------


def table_names(app_control) -> set[str]:
    return {row[0] for row in app_control.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def enum_types(app_control) -> list[str]:
    """Native ENUM types in the app's schema."""
    rows = app_control.sql(
        "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
        "WHERE t.typtype = 'e' AND n.nspname = 'public' ORDER BY 1"
    )
    return [row[0] for row in rows]


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # format_type(): "integer", "character varying(32)", "import_status"...
    notnull: bool
    has_default: bool  # a default, an identity or a generated column
    category: str  # pg_type.typcategory: S string, N numeric, B boolean, D date/time, E enum, A array, U user...
    typname: str
    typid: int


def table_columns(app_control, table: str) -> list[Column]:
    """The table's columns in order; [] when it does not exist."""
    rows = app_control.sql((
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
        "(a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> ''), t.typcategory::text, t.typname, a.atttypid::int "
        "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_type t ON t.oid = a.atttypid "
        "WHERE n.nspname = 'public' AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        [table],
    ))
    return [Column(r[0], r[1], bool(r[2]), bool(r[3]), r[4], r[5], int(r[6])) for r in rows]


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def placeholder(column: Column, unique: str) -> tuple[str, list[object]]:
    """An SQL expression (and its parameters) giving a plain value of the column's type, for NOT NULL columns
    the grader does not know: text, integer, numeric, boolean, timestamp, JSON, an enum's first label."""
    kind = column.type
    if column.category == "E":
        first = f"(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = {column.typid} ORDER BY e.enumsortorder LIMIT 1)"
        return f"CAST({first} AS {kind})", []
    if column.category == "B":
        return "false", []
    if column.category == "N":
        return f"CAST(0 AS {kind})", []
    if column.typname in ("json", "jsonb"):
        return f"CAST('{{}}' AS {kind})", []
    if column.category == "A":
        return f"CAST('{{}}' AS {kind})", []
    if column.typname == "uuid":
        return "gen_random_uuid()", []
    if column.typname == "date":
        return "DATE '2024-01-01'", []
    if column.typname in ("time", "timetz"):
        return f"CAST('00:00:00' AS {kind})", []
    if column.category == "D":
        return f"CAST('2024-01-01 00:00:00+00' AS {kind})", []
    if column.category == "T":
        return "INTERVAL '0'", []
    length = re.search(r"\((\d+)\)", kind)
    value = unique[: int(length.group(1))] if length and column.category == "S" else unique
    return f"CAST(%s AS {kind})", [value]


def needs_value(column: Column) -> bool:
    return column.notnull and not column.has_default
