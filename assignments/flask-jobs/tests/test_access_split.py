"""The split: API routes answer 401 JSON with a Bearer challenge, browser pages use the login form and
redirects; URLs behind the proxy; imports privacy.

PYTEST_DONT_REWRITE (see conftest.py). One Gunicorn worker and no Celery worker: imports posted here stay
`pending`, and no test waits for one. Users with tokens come from the users shared with other tests (see
conftest.py); each login through the form is a session of the test's own. Whether a forged token is accepted
at all is auth's to score: the token problems here are ones any app that checks tokens refuses, so only the
form of the refusal counts.
"""

from __future__ import annotations

import secrets
import uuid
from urllib.parse import urljoin, urlsplit

import pytest
from conftest import (
    PASSWORD,
    SANDBOX_ORIGIN,
    app_env,
    b64url,
    bearer,
    browser_login,
    create_import,
    csrf_fields,
    describe,
    expect_status,
    form_with,
    is_html,
    is_json,
    json_of,
    location_is_local,
    moved_back,
    next_param,
    parse_jwt,
    post_import,
    resolve_location,
    sign_jwt,
    token_lifetime,
)

EMPTY_CSV = "email,name,amount\n"
MISSING_IMPORT_ID = 987654321

# Every /api route except register and token; {id} is an existing import of another user.
PROTECTED_API = [
    ("GET", "/api/me", None),
    ("GET", "/api/imports", None),
    ("POST", "/api/imports", {"filename": "anonymous.csv", "csv": EMPTY_CSV}),
    ("GET", "/api/imports/{id}", None),
]


def _expect_401_bearer(response, what: str) -> None:
    """401, JSON {"error": ...}, WWW-Authenticate: Bearer ...; a redirect and Flask-JWT-Extended's 422 named as such."""
    if isinstance(response, BaseException):
        raise AssertionError(f"{what}: expected 401; {describe(response)}")
    if response.status_code in (301, 302, 303, 307, 308):
        raise AssertionError(
            f"{what}: expected 401 with a JSON error, but the API redirected like a browser page; {describe(response)}"
        )
    if response.status_code == 422:
        raise AssertionError(
            f"{what}: expected 401, got Flask-JWT-Extended's default 422 for a bad token (change it with its "
            f"invalid_token_loader and the other loaders); {describe(response)}"
        )
    expect_status(response, 401, what)
    assert is_json(response), f"{what}: expected Content-Type application/json; {describe(response)}"
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"{what}: the body is not valid JSON; {describe(response)}") from None
    assert isinstance(body, dict) and "error" in body, (
        f"{what}: expected a JSON object with an 'error' key"
        + (" (Flask-JWT-Extended's default key is 'msg')" if isinstance(body, dict) and "msg" in body else "")
        + f"; {describe(response)}"
    )
    challenge = response.headers.get("WWW-Authenticate", "")
    assert challenge.lower().startswith("bearer"), (
        f"{what}: a 401 of the API must carry a WWW-Authenticate header starting with Bearer (RFC 6750), "
        f"got {challenge or 'none'}; {describe(response)}"
    )


def _someone_elses_import_id(shared_users) -> object:
    """An existing import of another user; a missing id when imports cannot be created (that is scored elsewhere)."""
    try:
        return create_import(shared_users.take(), EMPTY_CSV, "owned-by-someone.csv")["id"]
    except AssertionError:
        return MISSING_IMPORT_ID


@pytest.mark.parametrize(("method", "path", "payload"), PROTECTED_API, ids=[f"{m} {p}" for m, p, _ in PROTECTED_API])
def test_api_without_token_is_401_bearer_json(client, shared_users, method, path, payload):
    """A protected API route without a token answers 401 JSON {"error": ...} with WWW-Authenticate: Bearer."""
    target = path.format(id=_someone_elses_import_id(shared_users)) if "{id}" in path else path
    response = client.request(method, target, json=payload)
    _expect_401_bearer(response, f"{method} {target} without an Authorization header")


BAD_TOKENS = ["basic-scheme", "malformed", "other-key", "expired"]
_BAD_TOKEN_WORDS = {
    "basic-scheme": "HTTP Basic credentials instead of a bearer token",
    "malformed": "a malformed bearer token",
    "other-key": "a token signed with another key",
    "expired": "an expired token",
}


def _bad_token_headers(account, app_control, kind: str) -> dict[str, str]:
    token = parse_jwt(account.token)
    if kind == "basic-scheme":
        return {"Authorization": "Basic " + b64url(f"{account.username}:{PASSWORD}".encode())}
    if kind == "malformed":
        return bearer("not-a-token")
    if kind == "other-key":
        return bearer(sign_jwt(token.header, token.payload, secrets.token_hex(32)))
    expired = moved_back(token.payload, token_lifetime(app_control) + 300)
    return bearer(sign_jwt(token.header, expired, app_env(app_control)["JWT_SECRET_KEY"]))


@pytest.mark.parametrize("kind", BAD_TOKENS)
def test_api_with_bad_token_is_401_bearer_json(client, app_control, shared_users, kind):
    """A bad token (another scheme, malformed, another key, expired) gets 401 JSON with a Bearer challenge, never 422."""
    headers = _bad_token_headers(shared_users.take(), app_control, kind)
    for path in ("/api/me", "/api/imports"):
        response = client.get(path, headers=headers)
        _expect_401_bearer(response, f"GET {path} with {_BAD_TOKEN_WORDS[kind]}")


def test_api_prefers_401_even_for_html_clients(client):
    """An API route answers 401 JSON even when the request prefers HTML (as a browser does), with or without a bad token."""
    accept = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    _expect_401_bearer(
        client.get("/api/imports", headers=accept), "GET /api/imports without a token, with a browser's Accept header"
    )
    _expect_401_bearer(
        client.get("/api/imports", headers={**accept, **bearer("not-a-token")}),
        "GET /api/imports with a malformed token, with a browser's Accept header",
    )


def test_session_cookie_does_not_open_the_api(client, shared_users):
    """A browser session from the login form does not open /api: the API authenticates by the bearer token only."""
    account = shared_users.take()
    expect_status(browser_login(client, account.username), 302, "POST /login (form) with the right password")
    expect_status(client.get("/imports"), 200, "GET /imports after logging in through the form")
    response = client.get("/api/me")
    _expect_401_bearer(response, "GET /api/me with the session cookie of a form login and no Authorization header")


def test_token_does_not_open_pages(client, shared_users):
    """A bearer token does not open /imports: the pages authenticate by the session only."""
    account = shared_users.take()
    response = client.get("/imports", headers=bearer(account.token))
    expect_status(response, 302, "GET /imports with a valid bearer token and no session (a page needs the session)")
    assert resolve_location(response).path == "/login", (
        f"GET /imports without a session: expected a redirect to /login; {describe(response)}"
    )


# --- pages --------------------------------------------------------------------------------------


def test_login_page_is_a_form_with_username_and_password(client):
    """GET /login is an HTML page with a form holding inputs named username and password."""
    response = client.get("/login")
    expect_status(response, 200, "GET /login")
    assert is_html(response), f"GET /login: expected an HTML page (Content-Type text/html); {describe(response)}"
    form = form_with(response.text, "username", "password")
    assert form is not None, (
        f'GET /login: expected a <form> with <input name="username"> and <input name="password">; {describe(response)}'
    )


def _names_imports(value: str) -> bool:
    """True for next=/imports, also written as this site's absolute URL (https://app.sandbox/imports)."""
    parts = urlsplit(value)
    return parts.path == "/imports" and parts.netloc in ("", "app.sandbox") and not parts.query


def test_imports_page_without_session_redirects_to_login(client):
    """GET /imports without a session answers 302 to /login with next naming /imports."""
    response = client.get("/imports")
    expect_status(response, 302, "GET /imports without a session (a browser page)")
    location = resolve_location(response)
    assert location_is_local(response) and location.path == "/login", (
        f"GET /imports without a session: expected a redirect to /login; {describe(response)}"
    )
    nexts = next_param(location)
    assert len(nexts) == 1 and _names_imports(nexts[0]), (
        f"GET /imports without a session: expected next=/imports in the redirect; {describe(response)}"
    )


def test_imports_page_redirects_even_when_json_is_preferred(client):
    """GET /imports without a session redirects to /login even if the request prefers JSON."""
    response = client.get("/imports", headers={"Accept": "application/json"})
    expect_status(response, 302, "GET /imports without a session, with Accept: application/json")
    assert resolve_location(response).path == "/login", (
        f"GET /imports without a session: expected a redirect to /login; {describe(response)}"
    )


def test_form_login_redirects_to_imports(client, shared_users):
    """A successful POST /login without next answers 302 to /imports, and the session then opens /imports."""
    username = shared_users.take().username
    response = browser_login(client, username)
    expect_status(response, 302, "POST /login (form) with the right password")
    location = resolve_location(response)
    assert location_is_local(response) and location.path == "/imports", (
        f"POST /login without next: expected a redirect to /imports; {describe(response)}"
    )
    expect_status(client.get("/imports"), 200, "GET /imports after logging in through the form")


def test_form_login_redirects_to_local_next(client, shared_users):
    """A successful POST /login with a local next path answers 302 to exactly that path."""
    username = shared_users.take().username
    response = browser_login(client, username, next_url="/api/me")
    expect_status(response, 302, "POST /login (form) with the right password and next=/api/me")
    location = resolve_location(response)
    assert location_is_local(response) and location.path == "/api/me", (
        f"POST /login with next=/api/me: expected a redirect to /api/me; {describe(response)}"
    )
    expect_status(client.get("/imports"), 200, "GET /imports after logging in through the form")


def test_form_login_failure_rerenders_form(client, shared_users):
    """A POST /login with a wrong password re-renders the login form (200 or 401) and logs no one in."""
    username = shared_users.take().username
    response = browser_login(client, username, password="wrong-password-1")
    if response.status_code in (301, 302, 303, 307, 308):
        raise AssertionError(f"POST /login with a wrong password: expected the form again, not a redirect; {describe(response)}")
    expect_status(response, (200, 401), "POST /login (form) with a wrong password")
    assert form_with(response.text, "username", "password") is not None, (
        f"POST /login with a wrong password: expected the login form to be shown again; {describe(response)}"
    )
    expect_status(client.get("/imports"), 302, "GET /imports after a failed form login (there must be no session)")


def _form_target(page_path: str, action: str) -> str:
    """Where a browser submits a form found on `page_path` (an empty action means the page itself)."""
    resolved = urlsplit(urljoin(SANDBOX_ORIGIN + page_path, action or page_path))
    return resolved.path + (f"?{resolved.query}" if resolved.query else "")


def test_login_round_trip_returns_to_imports(client, shared_users):
    """Following GET /imports -> /login form -> submit leads back to /imports, logged in, as a browser would."""
    username = shared_users.take().username
    first = client.get("/imports")
    expect_status(first, 302, "GET /imports without a session")
    login_url = resolve_location(first)
    login_path = login_url.path + (f"?{login_url.query}" if login_url.query else "")
    page = client.get(login_path)
    expect_status(page, 200, f"GET {login_path} (following the redirect)")
    form = form_with(page.text, "username", "password")
    assert form is not None, f"GET {login_path}: expected the login form; {describe(page)}"
    fields = [f for f in form["inputs"] if f["name"] and f["tag"] != "button" and f["type"] not in ("submit", "image")]
    data = {f["name"]: f["value"] for f in fields}
    data.update(username=username, password=PASSWORD)
    action = _form_target(login_path, form["action"])
    response = client.post(action, data=data)
    expect_status(response, 302, f"POST {action} (submitting the login form as a browser would)")
    target = resolve_location(response)
    assert location_is_local(response) and target.path == "/imports", (
        f"after logging in from GET /imports, expected to be sent back to /imports; {describe(response)}"
    )
    expect_status(client.get("/imports"), 200, "GET /imports after the login round trip")


def test_imports_page_lists_own_imports(client, shared_users):
    """GET /imports with a session is an HTML page with the filename and status of each own import, no one else's."""
    api = shared_users.take()
    expect_status(browser_login(client, api.username), 302, "POST /login (form) with the right password")
    mine = [create_import(api, EMPTY_CSV, f"mine-{uuid.uuid4().hex[:8]}.csv") for _ in range(2)]
    foreign = f"theirs-{uuid.uuid4().hex[:8]}.csv"
    create_import(shared_users.take(), EMPTY_CSV, foreign)
    response = client.get("/imports")
    expect_status(response, 200, "GET /imports with a session")
    assert is_html(response), f"GET /imports: expected an HTML page; {describe(response)}"
    missing = [item["filename"] for item in mine if item["filename"] not in response.text]
    assert not missing, f"GET /imports: the page does not show the user's imports {missing}; {describe(response)}"
    statuses = {str(json_of(api.get(f"/api/imports/{item['id']}"), "GET /api/imports/<id>").get("status")) for item in mine}
    absent = [status for status in statuses if status.lower() not in response.text.lower()]
    assert not absent, f"GET /imports: the page does not show the imports' status {absent}; {describe(response)}"
    assert foreign not in response.text, f"GET /imports shows another user's import {foreign!r}"


def test_browser_logout_redirects_to_login(client, shared_users):
    """POST /logout answers 302 to /login, after which /imports redirects to the login page again."""
    username = shared_users.take().username
    expect_status(browser_login(client, username), 302, "POST /login (form) with the right password")
    page = client.get("/imports")
    expect_status(page, 200, "GET /imports after logging in")
    response = client.post("/logout", data=csrf_fields(page.text))
    expect_status(response, 302, "POST /logout (browser)")
    location = resolve_location(response)
    assert location_is_local(response) and location.path == "/login", (
        f"POST /logout: expected a redirect to /login; {describe(response)}"
    )
    expect_status(client.get("/imports"), 302, "GET /imports after POST /logout (the session must be over)")


OFFSITE_NEXT = [
    pytest.param("https://evil.example/", id="absolute-url"),
    pytest.param("//evil.example", id="protocol-relative"),
    pytest.param("/\\evil.example", id="backslash"),
]


@pytest.mark.parametrize("next_url", OFFSITE_NEXT)
def test_login_refuses_open_redirect(client, shared_users, next_url):
    """POST /login with an off-site next does not redirect off-site; it goes to /imports instead."""
    username = shared_users.take().username
    response = browser_login(client, username, next_url=next_url)
    expect_status(response, 302, f"POST /login (form) with the right password and next={next_url!r}")
    assert location_is_local(response), (
        f"POST /login with next={next_url!r} redirected off-site (an open redirect); {describe(response)}"
    )
    assert resolve_location(response).path == "/imports", (
        f"POST /login with an off-site next={next_url!r}: expected a redirect to /imports instead; {describe(response)}"
    )


# --- URLs behind the proxy ----------------------------------------------------------------------


def _own_host() -> str:
    return f"j-{uuid.uuid4().hex[:6]}.jobs.test"


def test_import_location_uses_the_forwarded_host(user):
    """POST /api/imports answers Location https://<the Host sent>/api/imports/<id>, and GET of its path returns the import."""
    host = _own_host()
    response = post_import(user, EMPTY_CSV, "located.csv", headers={"Host": host})
    expect_status(response, 202, f"POST /api/imports sent with Host: {host}")
    body = json_of(response, "POST /api/imports")
    import_id = body.get("id") if isinstance(body, dict) else None
    location = response.headers.get("Location", "")
    expected = f"https://{host}/api/imports/{import_id}"
    if "127.0.0.1:8000" in location or location.startswith("http://"):
        raise AssertionError(
            f"POST /api/imports sent with Host: {host} through Nginx answered Location {location!r}, expected {expected!r}: "
            "the app does not read X-Forwarded-Proto/-Host (wrap it in werkzeug's ProxyFix(app.wsgi_app, x_proto=1, x_host=1))"
        )
    assert location in (expected, expected.replace(host, f"{host}:443", 1)), (
        f"POST /api/imports sent with Host: {host}: expected Location {expected!r}; {describe(response)}"
    )
    path = urlsplit(location).path
    again = user.get(path)
    expect_status(again, 200, f"GET {path} (the path of the Location header)")
    found = json_of(again, f"GET {path}")
    assert isinstance(found, dict) and found.get("id") == import_id, (
        f"GET {path} (from the Location header) should return import {import_id}; {describe(again)}"
    )


def test_page_redirect_stays_on_the_forwarded_host(client):
    """A page redirect is relative, or absolute on https and the Host the browser sent."""
    host = _own_host()
    response = client.get("/imports", headers={"Host": host})
    expect_status(response, 302, f"GET /imports without a session, sent with Host: {host}")
    raw = response.headers.get("Location", "")
    assert location_is_local(response, host), (
        f"GET /imports sent with Host: {host} redirected to {raw!r}: a page redirect may be relative, and an absolute "
        f"one must be https://{host}/... (ProxyFix with x_proto and x_host)"
    )


# --- imports privacy ----------------------------------------------------------------------------


def test_foreign_or_missing_import_is_404(user, shared_users):
    """GET /api/imports/<id> of another user's import answers 404, exactly like a missing id."""
    owner = shared_users.take()
    foreign = create_import(owner, EMPTY_CSV, "private.csv")["id"]
    theirs = user.get(f"/api/imports/{foreign}")
    expect_status(theirs, 404, "GET /api/imports/<id> of another user's import")
    missing = user.get(f"/api/imports/{MISSING_IMPORT_ID}")
    expect_status(missing, 404, "GET /api/imports/<id> of an import that does not exist")
    same = theirs.text.replace(str(foreign), "<id>") == missing.text.replace(str(MISSING_IMPORT_ID), "<id>")
    assert same, (
        "another user's import must look exactly like a missing one, but the answers differ: "
        f"{describe(theirs)} versus {describe(missing)}"
    )
    expect_status(owner.get(f"/api/imports/{foreign}"), 200, "the owner's GET /api/imports/<id> of their import")


def test_imports_list_shows_only_own(user, shared_users):
    """GET /api/imports lists the caller's imports and never another user's."""
    mine = create_import(user, EMPTY_CSV, "list-mine.csv")["id"]
    theirs = create_import(shared_users.take(), EMPTY_CSV, "list-theirs.csv")["id"]
    response = user.get("/api/imports")
    expect_status(response, 200, "GET /api/imports")
    listed = json_of(response, "GET /api/imports")
    assert isinstance(listed, list), f"GET /api/imports: expected a JSON list; {describe(response)}"
    ids = [item.get("id") for item in listed if isinstance(item, dict)]
    assert mine in ids, f"GET /api/imports does not list the caller's own import {mine}; {describe(response)}"
    assert theirs not in ids, f"GET /api/imports lists import {theirs}, which belongs to another user"
