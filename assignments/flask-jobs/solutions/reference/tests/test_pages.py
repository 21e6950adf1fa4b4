"""The pages: a login form, the session, redirects kept on this site, and the imports page."""

from __future__ import annotations

import re

import pytest

from .conftest import PASSWORD


def _log_in(client, next_url=None, password=PASSWORD):
    form = client.get("/login").get_data(as_text=True)
    data = {"username": "alice", "password": password,
            "csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)}
    if next_url is not None:
        data["next"] = next_url
    return client.post("/login", data=data)


def test_without_a_session_imports_redirects_to_login_with_next(client):
    answer = client.get("/imports", headers={"Accept": "application/json"})
    assert answer.status_code == 302 and answer.headers["Location"] == "/login?next=/imports"


def test_a_token_does_not_open_pages(client, alice):
    assert client.get("/imports", headers=alice.headers).status_code == 302


def test_login_needs_the_forms_token_and_shows_own_imports_only(client, alice, bob):
    alice.upload("email,name,amount\n", filename="alice.csv")
    bob.upload("email,name,amount\n", filename="bob-secret.csv")
    fields = {"username": "alice", "password": PASSWORD}
    assert client.post("/login", data=fields).status_code == 400
    assert _log_in(client, password="wrong password").status_code == 200
    answer = _log_in(client)
    assert answer.status_code == 302 and answer.headers["Location"] == "/imports"
    page = client.get("/imports").get_data(as_text=True)
    assert "alice.csv" in page and "pending" in page and "bob-secret.csv" not in page


def test_logout_ends_the_session(client, alice):
    _log_in(client)
    answer = client.post("/logout")
    assert answer.status_code == 302 and answer.headers["Location"] == "/login"
    assert client.get("/imports").status_code == 302


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example", "\\\\evil.example",
                                    "/\t/evil.example", "javascript:alert(1)"])
def test_no_open_redirect(client, alice, target):
    answer = _log_in(client, next_url=target)
    assert answer.status_code == 302 and answer.headers["Location"] == "/imports"


def test_a_local_next_is_followed(client, alice):
    assert _log_in(client, next_url="/imports?x=1").headers["Location"] == "/imports?x=1"
