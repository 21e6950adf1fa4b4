"""Errors under /api answer JSON `{"error": ...}` with their status (404, 405, 413, 400 CSRF, 500); pages answer HTML.

Routing errors come before authentication: a wrong URL or method answers 404/405 with or without a token (no
token would fix it, and the routes are public); a real route without a token answers 401.
"""

from __future__ import annotations

import pytest
from flask import Flask

from grader.web.users import Role

NO_TOKEN: dict[str, str] = {}


@pytest.fixture
def auth(users, tokens) -> dict[str, str]:
    user = users.create_user("bot@example.com", "password123", Role.reviewer)
    return {"Authorization": f"Bearer {tokens.create_token(user.id, 'ci')}"}


def _json_error(response, status: int) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json, response.headers["Content-Type"]
    body = response.get_json()
    assert isinstance(body.get("error"), str) and body["error"]
    return body["error"]


@pytest.mark.parametrize("with_token", [True, False], ids=["token", "no-token"])
def test_a_method_the_route_does_not_take_is_405_json(client, auth, with_token):
    """GET /api/submissions (a POST-only route) is 405 JSON naming the method to use, with `Allow`, token or not."""
    response = client.get("/api/submissions", headers=auth if with_token else NO_TOKEN)
    assert "POST" in _json_error(response, 405)
    assert "POST" in response.headers["Allow"]
    assert client.put("/api/submissions/s-1", headers=auth if with_token else NO_TOKEN).status_code == 405


@pytest.mark.parametrize("with_token", [True, False], ids=["token", "no-token"])
@pytest.mark.parametrize("path", ["/api/nope", "/api", "/api/submissions/s-1/nope"])
def test_an_unknown_api_route_is_404_json(client, auth, with_token, path):
    """A URL that is no API route is 404 JSON, token or not."""
    assert path in _json_error(client.get(path, headers=auth if with_token else NO_TOKEN), 404)


def test_a_real_route_without_a_token_is_401_json_before_any_lookup(client):
    """Without a token a real route answers 401 JSON with how to authenticate, whether or not the record exists."""
    for response in (client.get("/api/submissions/s-none"), client.post("/api/submissions", json={})):
        _json_error(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_body_too_large_is_413_json(client, auth):
    """A body over MAX_CONTENT_LENGTH is refused as 413 JSON."""
    response = client.post("/api/submissions", data="x" * (65 * 1024), headers={**auth, "Content-Type": "application/json"})
    _json_error(response, 413)


def test_an_api_bug_is_500_json_without_its_details(app: Flask, client, auth, monkeypatch, caplog):
    """An exception in an API view answers 500 JSON that tells nothing of the exception; it is logged."""
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def broken(_submission_id: str) -> None:
        raise RuntimeError("secret detail of the failure")

    monkeypatch.setattr(app.extensions["grader"].store, "get", broken)
    response = client.get("/api/submissions/s-1", headers=auth)
    assert "secret detail" not in _json_error(response, 500)
    assert "secret detail" in caplog.text


def test_a_csrf_refusal_under_api_is_json(app: Flask, client):
    """A form route under /api without the API's CSRF exemption still answers its 400 as JSON."""
    app.add_url_rule("/api/form-test", "form_test", lambda: "accepted", methods=["POST"])
    assert "CSRF" in _json_error(client.post("/api/form-test", data={"x": "1"}), 400)


def test_pages_keep_html_error_pages(app: Flask, client):
    """Outside /api errors stay pages: 404, 405 and 500 are not JSON."""
    app.config["PROPAGATE_EXCEPTIONS"] = False
    app.add_url_rule("/boom", "boom", lambda: 1 / 0)
    for response, status in ((client.get("/nope"), 404), (client.put("/login"), 405), (client.get("/boom"), 500)):
        assert response.status_code == status and not response.is_json
        assert response.mimetype == "text/html"
