"""Accounts and bearer tokens: registration, POST /api/token, a 401 with a Bearer challenge for each token problem."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from .conftest import EXPIRES, PASSWORD, Api


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def _assert_bearer_401(response):
    assert response.status_code == 401
    assert response.is_json and "error" in response.get_json()
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_register_validates_and_refuses_a_taken_name(client):
    created = client.post("/api/register", json={"username": "alice", "password": PASSWORD})
    assert created.status_code == 201 and created.get_json() == {"id": created.get_json()["id"], "username": "alice"}
    assert client.post("/api/register", json={"username": "alice", "password": PASSWORD}).status_code == 409
    for body in ({"username": "ab", "password": PASSWORD}, {"username": "a" * 33, "password": PASSWORD},
                 {"username": "al-ice", "password": PASSWORD}, {"username": "bob", "password": "short"},
                 {"username": "bob"}, {"password": PASSWORD}, ["bob"]):
        assert client.post("/api/register", json=body).status_code == 400
    assert client.post("/api/register", data="not json").status_code == 400


def test_token_shape_and_claims(app, client):
    user = Api(client, "alice")
    answer = client.post("/api/token", json={"username": "alice", "password": PASSWORD}).get_json()
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == EXPIRES
    claims = jwt.decode(answer["access_token"], app.config["JWT_SECRET_KEY"], algorithms=["HS256"])
    assert isinstance(claims["sub"], str)
    assert isinstance(claims["iat"], int) and claims["exp"] - claims["iat"] == EXPIRES
    assert user.get("/api/me").get_json() == {"id": int(claims["sub"]), "username": "alice"}


def test_wrong_credentials_401_and_missing_field_400(client):
    Api(client, "alice")
    wrong = client.post("/api/token", json={"username": "alice", "password": "wrong password"})
    unknown = client.post("/api/token", json={"username": "nobody", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401 and wrong.get_json() == unknown.get_json()
    assert client.post("/api/token", json={"username": "alice"}).status_code == 400


def test_equal_passwords_are_hashed_with_different_salts(app, client):
    Api(client, "alice")
    Api(client, "bobby")
    from jobs_app.models import User

    with app.app_context():
        hashes = [u.password_hash for u in User.query.all()]
    assert len(set(hashes)) == 2 and not any(PASSWORD in h for h in hashes)


def _forged(app, token: str) -> dict[str, str]:
    head, body, signature = token.split(".")
    claims = _claims(token)
    secret, session_key = app.config["JWT_SECRET_KEY"], app.config["SECRET_KEY"]
    moved = {**claims, **{k: claims[k] - EXPIRES - 300 for k in ("iat", "nbf", "exp")}}
    return {
        "changed signature": f"{head}.{body}.{signature[::-1]}",
        "edited payload": f"{head}.{_b64({**claims, 'sub': '2'})}.{signature}",
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{body}.",
        "signed with SECRET_KEY": jwt.encode(claims, session_key, algorithm="HS256"),
        "another key": jwt.encode(claims, "x" * 40, algorithm="HS256"),
        "expired": jwt.encode(moved, secret, algorithm="HS256"),
        "integer sub": jwt.encode({**claims, "sub": int(claims["sub"])}, secret, algorithm="HS256"),
        "unknown user": jwt.encode({**claims, "sub": "999"}, secret, algorithm="HS256"),
        "malformed": "not.a.token",
    }


@pytest.mark.parametrize("case", ["changed signature", "edited payload", "alg none", "signed with SECRET_KEY",
                                  "another key", "expired", "integer sub", "unknown user", "malformed"])
def test_every_bad_token_gets_401_with_a_bearer_challenge(app, client, case):
    user = Api(client, "alice")
    token = _forged(app, user.token)[case]
    for path in ("/api/me", "/api/imports", "/api/imports/1"):
        _assert_bearer_401(client.get(path, headers={"Authorization": f"Bearer {token}", "Accept": "text/html"}))


def test_resigning_the_same_claims_with_the_right_key_is_accepted(app, client):
    user = Api(client, "alice")
    same = jwt.encode(_claims(user.token), app.config["JWT_SECRET_KEY"], algorithm="HS256")
    assert client.get("/api/me", headers={"Authorization": f"Bearer {same}"}).status_code == 200


def test_no_header_another_scheme_or_a_session_cookie_get_401(client):
    Api(client, "alice")
    for headers in ({}, {"Authorization": "Basic YWxpY2U6cHc="}, {"Authorization": "Bearer"}):
        _assert_bearer_401(client.get("/api/me", headers=headers))
    form = client.get("/login").get_data(as_text=True)
    token = form.split('name="csrf_token" value="')[1].split('"')[0]
    fields = {"username": "alice", "password": PASSWORD, "csrf_token": token}
    assert client.post("/login", data=fields).status_code == 302
    _assert_bearer_401(client.get("/api/me"))  # the session does not open the API

