"""Who may see what: 401 JSON on the API, redirects to login on pages, no open redirect, CSRF."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from grader.web.users import Role
from tests.web.conftest import PASSWORD, csrf_of

API_ROUTES = [
    ("POST", "/api/invitations"),
    ("POST", "/api/submissions"),
    ("GET", "/api/submissions/s-000000000000"),
    ("GET", "/api/submissions/s-000000000000/report"),
    ("GET", "/api/submissions/s-000000000000/report.pdf"),
    ("GET", "/api/submissions/s-000000000000/junit.xml"),
    ("GET", "/api/submissions/s-000000000000/ctrf.json"),
    ("POST", "/api/submissions/s-000000000000/regrade"),
    ("DELETE", "/api/submissions/s-000000000000"),
    ("GET", "/api/assignments/tiny/cohort"),
]
PAGES = [
    "/submissions", "/submissions?assignment=tiny&sort=score", "/submissions/s-000000000000",
    "/submissions/s-000000000000/report.html", "/submissions/s-000000000000/report.pdf",
    "/submissions/s-000000000000/junit.xml", "/submissions/s-000000000000/ctrf.json",
    "/submissions/s-000000000000/report.json", "/compare?id=a&id=b", "/invitations", "/tokens",
    "/admin/assignments", "/admin/users", "/admin/invitations", "/admin/deliveries",
    "/assignments/tiny/cohort", "/assignments/tiny/similar/s-000000000000/s-000000000001",
]


def test_api_routes_are_listed_here(app):
    """Every /api route of the app is in API_ROUTES, so the 401 test covers new ones."""
    rules = {(m, r.rule) for r in app.url_map.iter_rules() if r.rule.startswith("/api") for m in r.methods - {"HEAD", "OPTIONS"}}
    examples = {(m, rule.replace("<submission_id>", "s-000000000000").replace("<assignment>", "tiny")) for m, rule in rules}
    assert examples == set(API_ROUTES)


@pytest.mark.parametrize("method,path", API_ROUTES)
@pytest.mark.parametrize("auth", [None, "Bearer wrong", "Basic dXNlcjpwYXNz", "Bearer "])
def test_api_without_a_valid_token_answers_401_json(client, method, path, auth):
    """No token, a wrong one or another scheme: 401 with a JSON body, never a redirect."""
    headers = {"Authorization": auth} if auth else {}
    response = client.open(path, method=method, headers=headers, json={})
    assert response.status_code == 401
    assert response.is_json and response.get_json()["error"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("method,path", API_ROUTES)
def test_api_ignores_a_session_cookie(client, login, method, path):
    """A logged-in browser session is not an API credential (the API is exempt from CSRF)."""
    login(Role.admin)
    assert client.open(path, method=method, json={}).status_code == 401


@pytest.mark.parametrize("path", PAGES)
def test_pages_without_a_session_redirect_to_login_with_next(client, path):
    """Every staff page answers 302 to /login?next=<the page>."""
    response = client.get(path)
    assert response.status_code == 302
    target = urlsplit(response.headers["Location"])
    assert target.path == "/login"
    assert parse_qs(target.query)["next"] == [path]


@pytest.mark.parametrize("path", [p for p in PAGES if p.startswith("/admin")])
def test_admin_pages_are_forbidden_to_reviewers(client, login, path):
    """A reviewer gets 403 on the administrators' pages."""
    login(Role.reviewer)
    assert client.get(path).status_code == 403


@pytest.mark.parametrize("target,expected", [
    ("/submissions?assignment=tiny", "/submissions?assignment=tiny"),
    ("https://evil.example/", "/submissions"),
    ("//evil.example/", "/submissions"),
    ("/\\evil.example", "/submissions"),
    ("\\\\evil.example", "/submissions"),
    ("javascript:alert(1)", "/submissions"),
    ("http:/evil.example", "/submissions"),
])
def test_login_refuses_an_open_redirect(client, users, target, expected):
    """After login, `next` is followed only when it is a path on this site."""
    users.create_user("ann@example.com", PASSWORD, Role.reviewer)
    token = csrf_of(client.get("/login").get_data(as_text=True))
    response = client.post("/login", query_string={"next": target},
                           data={"email": "ann@example.com", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == expected


def test_wrong_password_is_refused(client, users):
    """A wrong password logs nobody in."""
    users.create_user("ann@example.com", PASSWORD, Role.reviewer)
    token = csrf_of(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": "ann@example.com", "password": "nope", "csrf_token": token})
    assert response.status_code == 200 and "Wrong e-mail or password" in response.get_data(as_text=True)
    assert client.get("/submissions").status_code == 302


def test_passwords_are_hashed(users, store):
    """The users table holds a werkzeug hash, never the password."""
    users.create_user("ann@example.com", PASSWORD, Role.reviewer)
    with store.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT password_hash FROM users").scalar()
    assert PASSWORD not in stored and stored.startswith(("scrypt:", "pbkdf2:"))


def test_csrf_is_enforced_on_forms(client, users, login):
    """Login, invitation and regrade forms without the CSRF token are refused with 400."""
    users.create_user("ann@example.com", PASSWORD, Role.admin)
    assert client.post("/login", data={"email": "ann@example.com", "password": PASSWORD}).status_code == 400
    login(Role.admin)
    assert client.post("/invitations", data={"assignment": "tiny", "days": 1, "max_uses": 1}).status_code == 400
    assert client.post("/logout").status_code == 400
    assert client.post("/admin/users", data={"email": "x@example.com", "role": "admin", "password": "12345678"}).status_code == 400


def test_session_cookie_is_httponly_and_samesite(client, login):
    """The session cookie cannot be read by scripts and is not sent by cross-site requests."""
    login(Role.reviewer)
    cookie = client.get_cookie("session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"


def _form_login(client, email: str, password: str, address: str = "192.0.2.10"):
    token = csrf_of(client.get("/login").get_data(as_text=True))
    return client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token},
        environ_base={"REMOTE_ADDR": address},
    )


def test_password_guessing_is_throttled_per_email_and_address(app, client, users, web_settings):
    """After `login_attempts` wrong passwords for one e-mail from one address, even the right password is
    refused with 429 for the window; another address is not affected; after the window it works again."""
    app.extensions["grader"].settings = web_settings.replace(login_attempts=3, login_window_s=2)
    users.create_user("ann@example.com", PASSWORD, Role.reviewer)
    for _ in range(3):
        assert _form_login(client, "ann@example.com", "wrong password").status_code == 200
    refused = _form_login(client, "ann@example.com", PASSWORD)
    assert refused.status_code == 429
    assert "Too many failed logins" in refused.get_data(as_text=True)
    assert client.get("/submissions").status_code == 302, "a refused login must not open a session"
    assert _form_login(client, "ANN@example.com ", PASSWORD).status_code == 429, "the e-mail is compared as stored"
    assert _form_login(client, "ann@example.com", PASSWORD, address="192.0.2.99").status_code == 302
    client.post("/logout", data={"csrf_token": csrf_of(client.get("/login").get_data(as_text=True))})
    time.sleep(2.1)
    assert _form_login(client, "ann@example.com", PASSWORD).status_code == 302


def test_a_successful_login_forgets_the_failures_before_it(app, client, users, web_settings):
    app.extensions["grader"].settings = web_settings.replace(login_attempts=3)
    users.create_user("ann@example.com", PASSWORD, Role.reviewer)
    for _ in range(2):
        _form_login(client, "ann@example.com", "wrong password")
    assert _form_login(client, "ann@example.com", PASSWORD).status_code == 302
    for _ in range(2):
        _form_login(client, "ann@example.com", "wrong password")
    assert _form_login(client, "ann@example.com", PASSWORD).status_code == 302
    assert users.login_failures("ann@example.com", "192.0.2.10", 900) == 0
