"""Authentication: registration, login, logout, password storage."""

from conftest import PASSWORD, describe, login, register, unique_name


def test_register_then_login_returns_user(client):
    """Registering and logging in returns the user's id and name."""
    username, body = register(client)
    assert body.get("username") == username and isinstance(body.get("id"), int), f"register body {body!r}"
    response = login(client, username)
    assert response.json().get("username") == username, f"login body {response.json()!r}"
    me = client.get("/api/me")
    assert me.status_code == 200 and me.json().get("username") == username, f"GET /api/me {describe(me)}"


def test_wrong_password_is_401(client):
    """A wrong password is refused with 401."""
    username, _ = register(client)
    response = client.post("/api/login", json={"username": username, "password": "not-the-password"})
    assert response.status_code == 401, f"wrong password expected 401, {describe(response)}"


def test_duplicate_username_is_409(client, make_client):
    """A taken username is refused with 409, not 500."""
    username, _ = register(client)
    response = make_client().post("/api/register", json={"username": username, "password": PASSWORD})
    assert response.status_code == 409, f"duplicate username expected 409, {describe(response)}"


def test_password_not_stored_in_plaintext(client, app_control):
    """The database file does not contain the plaintext password."""
    secret = f"plain-{unique_name()}"
    register(client, password=secret)
    data = app_control.database_bytes()
    assert secret.encode() not in data, "the plaintext password was found in the database file"
