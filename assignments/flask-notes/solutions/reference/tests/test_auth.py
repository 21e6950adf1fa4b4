"""Accounts and sessions: register, log in, log out, and what an anonymous caller gets."""

from __future__ import annotations

import re


def test_register_then_log_in_starts_a_session(client, accounts):
    created = accounts.register("alice")
    assert created.status_code == 201
    assert created.get_json()["username"] == "alice"
    assert client.get("/api/me").status_code == 401  # registering does not log in

    assert accounts.log_in("alice").status_code == 200
    assert client.get("/api/me").get_json()["username"] == "alice"

    assert client.post("/api/logout").status_code == 204
    assert client.get("/api/me").status_code == 401


def test_register_refuses_a_taken_name_and_bad_input(client, accounts):
    assert accounts.register("alice").status_code == 201
    assert accounts.register("alice", "another password").status_code == 409
    assert accounts.register("a!").status_code == 400
    assert accounts.register("bob", "short").status_code == 400
    assert client.post("/api/register", data="not json").status_code == 400


def test_wrong_password_and_unknown_user_get_the_same_401(accounts):
    accounts.register("alice")
    wrong, unknown = accounts.log_in("alice", "wrong password"), accounts.log_in("nobody")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json() == unknown.get_json()


def test_without_a_session_the_api_answers_401_json_and_pages_redirect_to_login(client):
    api = client.get("/api/notes")
    assert api.status_code == 401
    assert api.is_json and "error" in api.get_json()
    assert "WWW-Authenticate" in api.headers

    page = client.get("/notes")
    assert page.status_code == 302
    assert page.headers["Location"] == "/login?next=/notes"


def test_the_login_form_needs_its_token_and_never_redirects_off_site(client, accounts):
    accounts.register("alice")
    form = client.get("/login?next=//evil.example/x").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    fields = {"username": "alice", "password": accounts.password, "next": "//evil.example/x"}

    assert client.post("/login", data=fields).status_code == 400  # no token
    response = client.post("/login", data={**fields, "csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == "/notes"
    assert "Notes of alice" in client.get("/notes").get_data(as_text=True)
