"""The split: API routes answer 401 JSON, browser pages use the login form and redirects.

PYTEST_DONT_REWRITE (see conftest.py). Accounts and notes of other users come from the users
shared with other tests (see conftest.py); each login through the form is a session of the test's own.
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import pytest
from conftest import (
    PASSWORD,
    SANDBOX_HOST,
    SANDBOX_ORIGIN,
    browser_login,
    create_note,
    csrf_fields,
    describe,
    expect_status,
    form_with,
    is_html,
    is_json,
    location_is_local,
    next_param,
    resolve_location,
    tamper_session,
    unique_name,
)

# Every /api route except register and login; {id} is an existing note of another user.
PROTECTED_API = [
    ("GET", "/api/me", None),
    ("POST", "/api/logout", None),
    ("GET", "/api/notes", None),
    ("POST", "/api/notes", {"title": "anonymous", "body": "should not be stored"}),
    ("GET", "/api/notes/{id}", None),
    ("PATCH", "/api/notes/{id}", {"title": "changed"}),
    ("DELETE", "/api/notes/{id}", None),
    ("POST", "/api/notes/{id}/like", None),
]


def _expect_401_json(response, what: str) -> None:
    if response.status_code in (301, 302, 303, 307, 308):
        raise AssertionError(
            f"{what}: expected 401 with a JSON error, but the API redirected like a browser page; {describe(response)}"
        )
    expect_status(response, 401, what)
    assert is_json(response), f"{what}: expected Content-Type application/json; {describe(response)}"
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"{what}: the body is not valid JSON; {describe(response)}") from None
    assert isinstance(body, dict) and "error" in body, f"{what}: expected a JSON object with an 'error' key; {describe(response)}"


MISSING_NOTE_ID = 987654321


def _someone_elses_note_id(shared_users) -> object:
    """An existing note of another user; a missing id when notes cannot be created (that is auth's to score)."""
    try:
        owner, _ = shared_users.take()
        return create_note(owner, "owned by someone", "a b c")["id"]
    except AssertionError:
        return MISSING_NOTE_ID


@pytest.mark.parametrize(("method", "path", "payload"), PROTECTED_API, ids=[f"{m} {p}" for m, p, _ in PROTECTED_API])
def test_api_without_session_is_401_json(client, shared_users, method, path, payload):
    """A protected API route without a session answers 401 with a JSON {"error": ...}, never a redirect."""
    target = path.format(id=_someone_elses_note_id(shared_users)) if "{id}" in path else path
    response = client.request(method, target, json=payload)
    _expect_401_json(response, f"{method} {target} without a session")


def test_api_with_tampered_session_cookie_is_401_json(client, shared_users):
    """An API call with a forged (tampered) session cookie answers 401 JSON, not 200 and not a redirect."""
    tamper_session(client, shared_users.take()[0])
    response = client.get("/api/notes")
    _expect_401_json(response, "GET /api/notes with a tampered session cookie")


def test_api_prefers_401_even_for_html_clients(client):
    """An API route answers 401 JSON even when the request says it prefers HTML (as a browser does)."""
    headers = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    response = client.get("/api/notes", headers=headers)
    _expect_401_json(response, "GET /api/notes without a session, with a browser's Accept header")


def test_login_page_is_a_form_with_username_and_password(client):
    """GET /login is an HTML page with a form holding inputs named username and password."""
    response = client.get("/login")
    expect_status(response, 200, "GET /login")
    assert is_html(response), f"GET /login: expected an HTML page (Content-Type text/html); {describe(response)}"
    form = form_with(response.text, "username", "password")
    assert form is not None, (
        f'GET /login: expected a <form> with <input name="username"> and <input name="password">; {describe(response)}'
    )


def test_notes_page_without_session_redirects_to_login(client):
    """GET /notes without a session answers 302 to /login with next naming /notes."""
    response = client.get("/notes")
    expect_status(response, 302, "GET /notes without a session (a browser page)")
    location = resolve_location(response)
    assert location_is_local(response) and location.path == "/login", (
        f"GET /notes without a session: expected a redirect to /login; {describe(response)}"
    )
    nexts = next_param(location)
    assert len(nexts) == 1 and _names_notes(nexts[0]), (
        f"GET /notes without a session: expected next=/notes in the redirect; {describe(response)}"
    )


def _names_notes(value: str) -> bool:
    """True for next=/notes, also written as this site's absolute URL (https://app.sandbox/notes)."""
    parts = urlsplit(value)
    return parts.path == "/notes" and parts.netloc in ("", SANDBOX_HOST) and not parts.query


def test_notes_page_redirects_even_when_json_is_preferred(client):
    """GET /notes without a session redirects to /login even if the request prefers JSON."""
    response = client.get("/notes", headers={"Accept": "application/json"})
    expect_status(response, 302, "GET /notes without a session, with Accept: application/json")
    assert resolve_location(response).path == "/login", (
        f"GET /notes without a session: expected a redirect to /login; {describe(response)}"
    )


def test_form_login_redirects_to_notes(client, shared_users):
    """A successful POST /login without next answers 302 to /notes, and the session then opens /notes."""
    username = shared_users.take()[1].username
    response = browser_login(client, username)
    expect_status(response, 302, "POST /login (form) with the right password")
    location = resolve_location(response)
    assert location_is_local(response) and location.path == "/notes", (
        f"POST /login without next: expected a redirect to /notes; {describe(response)}"
    )
    page = client.get("/notes")
    expect_status(page, 200, "GET /notes after logging in through the form")


def test_form_login_redirects_to_local_next(client, shared_users):
    """A successful POST /login with a local next path answers 302 to exactly that path."""
    username = shared_users.take()[1].username
    response = browser_login(client, username, next_url="/api/me")
    expect_status(response, 302, "POST /login (form) with the right password and next=/api/me")
    location = resolve_location(response)
    assert location_is_local(response) and location.path == "/api/me", (
        f"POST /login with next=/api/me: expected a redirect to /api/me; {describe(response)}"
    )
    page = client.get("/notes")
    expect_status(page, 200, "GET /notes after logging in through the form")


def test_form_login_failure_rerenders_form(client, shared_users):
    """A POST /login with a wrong password re-renders the login form (200 or 401) and logs no one in."""
    username = shared_users.take()[1].username
    response = browser_login(client, username, password="wrong-password-1")
    if response.status_code in (301, 302, 303, 307, 308):
        raise AssertionError(f"POST /login with a wrong password: expected the form again, not a redirect; {describe(response)}")
    expect_status(response, (200, 401), "POST /login (form) with a wrong password")
    assert form_with(response.text, "username", "password") is not None, (
        f"POST /login with a wrong password: expected the login form to be shown again; {describe(response)}"
    )
    notes = client.get("/notes")
    expect_status(notes, 302, "GET /notes after a failed form login (there must be no session)")


def _form_target(page_path: str, action: str) -> str:
    """Where a browser submits a form found on `page_path` (an empty action means the page itself)."""
    resolved = urlsplit(urljoin(SANDBOX_ORIGIN + page_path, action or page_path))
    return resolved.path + (f"?{resolved.query}" if resolved.query else "")


def test_login_round_trip_returns_to_notes(client, shared_users):
    """Following GET /notes -> /login form -> submit leads back to /notes, logged in, as a browser would."""
    username = shared_users.take()[1].username
    first = client.get("/notes")
    expect_status(first, 302, "GET /notes without a session")
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
    assert location_is_local(response) and target.path == "/notes", (
        f"after logging in from GET /notes, expected to be sent back to /notes; {describe(response)}"
    )
    final = client.get("/notes")
    expect_status(final, 200, "GET /notes after the login round trip")


def test_notes_page_lists_own_titles(client, shared_users):
    """GET /notes with a session is an HTML page listing the user's note titles and no one else's."""
    api, account = shared_users.take()
    expect_status(browser_login(client, account.username), 302, "POST /login (form) with the right password")
    mine = [f"Title {unique_name('mine')}" for _ in range(2)]
    for title in mine:
        create_note(api, title, "body text")
    other, _ = shared_users.take()
    foreign = f"Title {unique_name('theirs')}"
    create_note(other, foreign, "body text")
    response = client.get("/notes")
    expect_status(response, 200, "GET /notes with a session")
    assert is_html(response), f"GET /notes: expected an HTML page; {describe(response)}"
    missing = [title for title in mine if title not in response.text]
    assert not missing, f"GET /notes: the page does not show the user's titles {missing}; {describe(response)}"
    assert foreign not in response.text, f"GET /notes shows another user's note title {foreign!r}"


def test_browser_logout_redirects_to_login(client, shared_users):
    """POST /logout answers 302 to /login, after which /notes redirects to the login page again."""
    username = shared_users.take()[1].username
    logged_in = browser_login(client, username)
    expect_status(logged_in, 302, "POST /login (form) with the right password")
    page = client.get("/notes")
    expect_status(page, 200, "GET /notes after logging in")
    response = client.post("/logout", data=csrf_fields(page.text))
    expect_status(response, 302, "POST /logout (browser)")
    location = resolve_location(response)
    assert location_is_local(response) and location.path == "/login", (
        f"POST /logout: expected a redirect to /login; {describe(response)}"
    )
    after = client.get("/notes")
    expect_status(after, 302, "GET /notes after POST /logout (the session must be over)")


OFFSITE_NEXT = [
    pytest.param("https://evil.example/", id="absolute-url"),
    pytest.param("//evil.example", id="protocol-relative"),
    pytest.param("/\\evil.example", id="backslash"),
]


@pytest.mark.parametrize("next_url", OFFSITE_NEXT)
def test_login_refuses_open_redirect(client, shared_users, next_url):
    """POST /login with an off-site next does not redirect off-site; it goes to /notes instead."""
    username = shared_users.take()[1].username
    response = browser_login(client, username, next_url=next_url)
    expect_status(response, 302, f"POST /login (form) with the right password and next={next_url!r}")
    assert location_is_local(response), (
        f"POST /login with next={next_url!r} redirected off-site (an open redirect); {describe(response)}"
    )
    location = resolve_location(response)
    assert location.path == "/notes", (
        f"POST /login with an off-site next={next_url!r}: expected a redirect to /notes instead; {describe(response)}"
    )
