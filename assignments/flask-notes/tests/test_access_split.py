"""The split: API routes answer 401 JSON, browser pages redirect to the login page."""

from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import describe

PROTECTED_API = [("GET", "/api/me"), ("GET", "/api/notes"), ("POST", "/api/notes")]


@pytest.mark.parametrize(("method", "path"), PROTECTED_API)
def test_api_without_session_is_401_json(client, method, path):
    """A protected API route without a session answers 401 with a JSON error, never a redirect."""
    response = client.request(method, path, json={} if method == "POST" else None)
    assert response.status_code == 401, f"{method} {path} without a session expected 401, {describe(response)}"
    assert response.headers.get("Content-Type", "").startswith("application/json"), (
        f"{method} {path} expected a JSON body, {describe(response)}"
    )
    assert "error" in response.json(), f"{method} {path} expected an 'error' key, {describe(response)}"


def test_notes_page_redirects_to_login(client):
    """GET /notes without a session redirects to /login?next=/notes."""
    response = client.get("/notes")
    assert response.status_code == 302, f"GET /notes without a session expected 302, {describe(response)}"
    location = urlsplit(response.headers.get("Location", ""))
    assert location.path == "/login", f"expected a redirect to /login, {describe(response)}"
    assert parse_qs(location.query).get("next") == ["/notes"], f"expected next=/notes, {describe(response)}"
