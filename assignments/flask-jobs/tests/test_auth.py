"""Registration, POST /api/token, the tokens it gives and how they are checked, password storage.

PYTEST_DONT_REWRITE (see conftest.py). One Gunicorn worker and no Celery worker. Whether a token is
accepted is judged by GET /api/me answering 200 with its user; the exact form of a refusal (401 JSON with a
Bearer challenge) is the access_split category's business, so a flaw there costs no points here.

Tokens are forged by hand from the app's own: re-signed with JWT_SECRET_KEY (the control, which must be
accepted), with its times moved back by the lifetime + 300 s (expired), with SECRET_KEY, another key, no
signature at all (`alg: none`), an edited payload or a changed signature.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid

import pytest
from conftest import (
    PASSWORD,
    answer,
    app_env,
    b64url,
    bearer,
    describe,
    expect_status,
    get_token,
    hs256,
    json_of,
    me,
    moved_back,
    parse_jwt,
    register,
    sign_jwt,
    table_columns,
    token_lifetime,
    unique_name,
    unsigned_jwt,
)

EXPIRY_MARGIN_S = 300


def _suffix(length: int) -> str:
    return uuid.uuid4().hex[:length]


def _check_user_body(body, username: str, what: str) -> None:
    assert isinstance(body, dict), f"{what}: expected a JSON object {{id, username}}, got {body!r}"
    assert body.get("username") == username, f"{what}: expected username {username!r}, got body {body!r}"
    assert isinstance(body.get("id"), (int, str)) and body.get("id") not in ("", None), f"{what}: expected an id, got body {body!r}"


# --- registration -------------------------------------------------------------------------------


def test_register_returns_201_with_id_and_username(client):
    """Registering a new user answers 201 with the user's id and username, and no password."""
    username = unique_name()
    secret = f"pw-{_suffix(12)}"
    response = client.post("/api/register", json={"username": username, "password": secret})
    expect_status(response, 201, "POST /api/register with a valid new username and password")
    _check_user_body(json_of(response, "POST /api/register"), username, "POST /api/register")
    assert secret not in response.text, f"POST /api/register echoed the password back; {describe(response)}"


def _register_cases(client, cases: list[tuple[str, dict]], expected: int) -> list[str]:
    """POST /api/register for each (label, request kwargs); the labels of answers other than `expected`."""
    wrong = []
    for label, kwargs in cases:
        response = client.post("/api/register", **kwargs)
        if response.status_code != expected:
            wrong.append(f"{label} {answer(response)}")
    return wrong


def test_register_accepts_values_at_the_bounds(client):
    """Usernames of 3 and 32 characters of [A-Za-z0-9_] and an 8-character password are accepted (201)."""
    cases = [
        ("a 3-character username", "a" + _suffix(2), PASSWORD),
        ("a 32-character username", ("Z9_" + _suffix(32))[:32], PASSWORD),
        ("letters, digits and underscore", f"Mixed_Case_09_{_suffix(6)}", PASSWORD),
        ("an 8-character password", unique_name(), "8chars!!"),
    ]
    wrong = _register_cases(
        client,
        [(f"{label} ({name!r})", {"json": {"username": name, "password": pw}}) for label, name, pw in cases],
        201,
    )
    assert not wrong, "POST /api/register should accept valid input with 201, but refused " + "; ".join(wrong)


def test_register_rejects_invalid_usernames(client):
    """Usernames shorter than 3, longer than 32, or with characters outside [A-Za-z0-9_] are refused with 400."""
    names = {
        "2 characters": "ab",
        "33 characters": "x" * 33,
        "empty": "",
        "a dash": "has-dash",
        "a space": "has space",
        "a non-ASCII letter": "caf\u00e9_user",
        "a trailing newline": "newline_end\n",
    }
    wrong = _register_cases(
        client,
        [
            (f"a username with {label} ({name!r})", {"json": {"username": name, "password": PASSWORD}})
            for label, name in names.items()
        ],
        400,
    )
    assert not wrong, "POST /api/register should refuse invalid usernames with 400; " + "; ".join(wrong)


def test_register_rejects_short_password(client):
    """A password shorter than 8 characters is refused with 400."""
    response = client.post("/api/register", json={"username": unique_name(), "password": "7chars!"})
    expect_status(response, 400, "POST /api/register with a 7-character password")


def test_register_rejects_missing_fields(client):
    """A registration without username, without password, or with an empty object is refused with 400."""
    cases = [
        ("no username", {"password": PASSWORD}),
        ("no password", {"username": unique_name()}),
        ("an empty object", {}),
    ]
    wrong = _register_cases(client, [(f"a body with {label}", {"json": body}) for label, body in cases], 400)
    assert not wrong, "POST /api/register should refuse missing fields with 400; " + "; ".join(wrong)


def test_register_rejects_non_json_body(client):
    """A registration whose body is not JSON (form-encoded, malformed, plain text) is refused with 400."""
    cases = [
        ("application/x-www-form-urlencoded", f"username={unique_name()}&password={PASSWORD}"),
        ("application/json", '{"username": "broken_json", "password": '),
        ("text/plain", f"{unique_name()} {PASSWORD}"),
    ]
    wrong = _register_cases(
        client,
        [(f"a {ctype} body {raw!r}", {"data": raw, "headers": {"Content-Type": ctype}}) for ctype, raw in cases],
        400,
    )
    assert not wrong, "POST /api/register should refuse a non-JSON body with 400; " + "; ".join(wrong)


def test_register_taken_username_is_409(client, shared_users):
    """Registering a username that is already taken answers 409, not 500."""
    username = shared_users.take().username
    response = client.post("/api/register", json={"username": username, "password": "another-pass-99"})
    expect_status(response, 409, f"POST /api/register with the taken username {username!r}")


# --- POST /api/token ----------------------------------------------------------------------------


def test_token_answers_a_bearer_token_and_its_lifetime(client, app_control, shared_users):
    """POST /api/token answers 200 {access_token, token_type: "Bearer", expires_in = JWT_ACCESS_TOKEN_EXPIRES}."""
    username = shared_users.take().username
    response = client.post("/api/token", json={"username": username, "password": PASSWORD})
    expect_status(response, 200, "POST /api/token with the right password")
    body = json_of(response, "POST /api/token")
    assert isinstance(body, dict), f"POST /api/token: expected a JSON object; {describe(response)}"
    lifetime = token_lifetime(app_control)
    wrong = []
    if not isinstance(body.get("access_token"), str) or not body.get("access_token"):
        wrong.append("no access_token string")
    if body.get("token_type") != "Bearer":
        wrong.append(f"token_type {body.get('token_type')!r} instead of 'Bearer'")
    if body.get("expires_in") != lifetime:
        wrong.append(f"expires_in {body.get('expires_in')!r} instead of {lifetime} (JWT_ACCESS_TOKEN_EXPIRES of this run)")
    assert not wrong, f"POST /api/token: {'; '.join(wrong)}; got {sorted(body)} keys, {describe(response)}"


def test_token_is_hs256_signed_with_jwt_secret_key(client, app_control, shared_users):
    """The token is a JWT: HS256, signed with JWT_SECRET_KEY, integer iat and exp with exp - iat = the lifetime, a string sub."""
    account = shared_users.take()
    token = parse_jwt(get_token(client, account.username), "the access_token of POST /api/token")
    env = app_env(app_control)
    lifetime = token_lifetime(app_control)
    assert token.header.get("alg") == "HS256", f"the token's header says alg {token.header.get('alg')!r}; expected HS256"
    if token.signature == _mac(token.signing_input, env["SECRET_KEY"]):
        raise AssertionError(
            "the token is signed with SECRET_KEY, not JWT_SECRET_KEY: Flask-JWT-Extended falls back to SECRET_KEY "
            "unless JWT_SECRET_KEY is set in its configuration"
        )
    assert token.signature == _mac(token.signing_input, env["JWT_SECRET_KEY"]), (
        "the token's signature is not HS256 with JWT_SECRET_KEY (the key of this run, from the environment)"
    )
    iat, exp = token.payload.get("iat"), token.payload.get("exp")
    assert isinstance(iat, int) and isinstance(exp, int) and not isinstance(iat, bool), (
        f"the token needs integer iat and exp claims, its payload is {token.payload!r}"
    )
    assert exp - iat == lifetime, (
        f"the token's exp - iat is {exp - iat} s; expected JWT_ACCESS_TOKEN_EXPIRES of this run, {lifetime} s"
    )
    sub = token.payload.get("sub")
    assert isinstance(sub, str), (
        f"the token's sub claim is {sub!r} ({type(sub).__name__}); it must be a string "
        "(create_access_token(identity=str(user.id)); PyJWT 2.10 and later refuse any other)"
    )


def _mac(signing_input: str, key: str) -> bytes:
    return hs256(signing_input, key)


def test_token_wrong_credentials_is_401(client, shared_users):
    """POST /api/token with a wrong password or an unknown username answers 401."""
    username = shared_users.take().username
    cases = [
        ("a wrong password", {"username": username, "password": "not-the-password"}),
        ("an unknown username", {"username": unique_name("ghost"), "password": PASSWORD}),
    ]
    wrong = []
    for label, body in cases:
        response = client.post("/api/token", json=body)
        if response.status_code != 401:
            wrong.append(f"{label}: {answer(response)}")
    assert not wrong, "POST /api/token should answer 401 for wrong credentials; " + "; ".join(wrong)


def test_token_missing_field_is_400(client, shared_users):
    """POST /api/token without username or without password answers 400."""
    username = shared_users.take().username
    wrong = []
    for label, body in (("no password", {"username": username}), ("no username", {"password": PASSWORD})):
        response = client.post("/api/token", json=body)
        if response.status_code != 400:
            wrong.append(f"{label}: {answer(response)}")
    assert not wrong, "POST /api/token should answer 400 for a missing field; " + "; ".join(wrong)


def test_me_returns_the_token_user(client, shared_users):
    """GET /api/me with the token answers 200 with the id and username of its user."""
    account = shared_users.take()
    response = client.get("/api/me", headers=bearer(account.token))
    expect_status(response, 200, "GET /api/me with a token from POST /api/token")
    body = json_of(response, "GET /api/me")
    _check_user_body(body, account.username, "GET /api/me")
    assert body.get("id") == account.id, f"GET /api/me: expected id {account.id!r} (from registration), got {body!r}"


# --- what a token must not do -------------------------------------------------------------------


def test_token_resigned_with_jwt_secret_key_is_accepted(client, app_control, shared_users):
    """The control: the app's token signed again with JWT_SECRET_KEY, nothing changed, is accepted."""
    account = shared_users.take()
    token = parse_jwt(account.token)
    again = sign_jwt(token.header, token.payload, app_env(app_control)["JWT_SECRET_KEY"])
    body = me(client, again)
    assert isinstance(body, dict) and body.get("username") == account.username, (
        "the app's own token, signed again with JWT_SECRET_KEY and nothing else changed, was refused by GET /api/me; "
        f"{describe(client.get('/api/me', headers=bearer(again)))}. Tokens must be HS256 with JWT_SECRET_KEY "
        "(the checks of forged tokens rely on it)"
    )


def _forgeries(account, other, env: dict[str, str], lifetime: int) -> dict[str, dict[str, str]]:
    """Request headers for each way of not having a valid token."""
    token = parse_jwt(account.token)
    parts = account.token.split(".")
    flipped = bytearray(token.signature)
    flipped[len(flipped) // 2] ^= 0x5A
    edited = {**token.payload, "sub": str(other.id) if other.id is not None else "1"}
    expired = moved_back(token.payload, lifetime + EXPIRY_MARGIN_S)
    return {
        "no-header": {},
        "basic-scheme": {"Authorization": "Basic " + b64url(f"{account.username}:{PASSWORD}".encode())},
        "token-scheme": {"Authorization": f"Token {account.token}"},
        "bare-token": {"Authorization": account.token},
        "malformed-garbage": bearer("not-a-token"),
        "malformed-two-parts": bearer(".".join(parts[:2])),
        "malformed-json": bearer(f"{parts[0]}.{b64url(b'{not json')}.{parts[2]}"),
        "changed-signature": bearer(f"{parts[0]}.{parts[1]}.{b64url(bytes(flipped))}"),
        "edited-payload": bearer(f"{parts[0]}.{b64url(_json(edited))}.{parts[2]}"),
        "alg-none": bearer(unsigned_jwt(token.payload)),
        "other-key": bearer(sign_jwt(token.header, token.payload, secrets.token_hex(32))),
        "expired": bearer(sign_jwt(token.header, expired, env["JWT_SECRET_KEY"])),
    }


def _json(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


FORGERIES = [
    "no-header", "basic-scheme", "token-scheme", "bare-token", "malformed-garbage", "malformed-two-parts", "malformed-json",
    "changed-signature", "edited-payload", "alg-none", "other-key", "expired",
]
_WHY = {
    "no-header": "no Authorization header",
    "basic-scheme": "HTTP Basic credentials instead of a bearer token",
    "token-scheme": "the valid token under another scheme (Authorization: Token ...)",
    "bare-token": "the valid token without the Bearer scheme",
    "malformed-garbage": "a bearer 'token' that is no JWT",
    "malformed-two-parts": "a token cut to two parts",
    "malformed-json": "a token whose payload is not JSON",
    "changed-signature": "the token with its signature changed",
    "edited-payload": "the token with its sub changed to another user and not signed again",
    "alg-none": "the token's payload with alg: none and no signature",
    "other-key": "the token's payload signed with another key",
    "expired": "the token signed again with JWT_SECRET_KEY, its iat, nbf and exp moved back by the lifetime + 300 s",
}


@pytest.mark.parametrize("forgery", FORGERIES)
def test_forged_or_expired_token_is_refused(client, app_control, shared_users, forgery):
    """A request without a valid bearer token (forged, expired, another scheme, none) never opens GET /api/me."""
    account, other = shared_users.take(), shared_users.take()
    headers = _forgeries(account, other, app_env(app_control), token_lifetime(app_control))[forgery]
    response = client.get("/api/me", headers=headers)
    assert not 200 <= response.status_code < 300, (
        f"GET /api/me with {_WHY[forgery]} was accepted; {describe(response)}"
    )
    assert response.status_code < 500, (
        f"GET /api/me with {_WHY[forgery]} crashed the app instead of being refused with 401; {describe(response)}"
    )


def test_token_signed_with_secret_key_is_refused(client, app_control, shared_users):
    """The token's payload signed with SECRET_KEY (the session key, not the token key) is refused."""
    account = shared_users.take()
    token = parse_jwt(account.token)
    forged = sign_jwt(token.header, token.payload, app_env(app_control)["SECRET_KEY"])
    response = client.get("/api/me", headers=bearer(forged))
    assert not 200 <= response.status_code < 300, (
        "GET /api/me with the token's payload signed with SECRET_KEY was accepted: tokens must be signed and checked "
        "with JWT_SECRET_KEY only (Flask-JWT-Extended falls back to SECRET_KEY unless JWT_SECRET_KEY is configured), "
        f"or anyone with the session key forges tokens; {describe(response)}"
    )


# --- passwords ----------------------------------------------------------------------------------


def test_password_not_stored_in_plaintext(client, app_control):
    """A dump of the database (pg_dump) does not contain a user's plaintext password."""
    secret = f"plain-{uuid.uuid4().hex}"
    username, _ = register(client, password=secret)
    get_token(client, username, password=secret)
    data = app_control.database_bytes()
    assert secret.encode() not in data, "the plaintext password was found in a pg_dump of the database"
    assert secret.encode("utf-16-le") not in data, "the plaintext password was found (UTF-16) in a pg_dump of the database"


_PASSWORDISH = re.compile(r"pass|pwd|hash|digest|secret|salt", re.IGNORECASE)


def test_same_password_gives_different_stored_hashes(client, app_control):
    """Two users with the same password have different stored password hashes (salted hashing)."""
    first, _ = register(client)
    second, _ = register(client)
    columns = table_columns(app_control, "users")
    assert columns, "the database has no `users` table to read the stored passwords from"
    texts = [c.name for c in columns if c.category == "S" and c.name != "username"]
    assert texts, f"found no text column in `users` for the stored password (columns {[c.name for c in columns]})"
    select = ", ".join(f'"{name}"::text' for name in texts)
    rows = app_control.sql((f'SELECT username, {select} FROM users WHERE username IN (%s, %s)', [first, second]))
    by_user = {row[0]: dict(zip(texts, row[1:], strict=True)) for row in rows}
    assert set(by_user) == {first, second}, f"could not find both users {first!r} and {second!r} in `users`"
    a, b = by_user[first], by_user[second]
    named = [n for n in texts if _PASSWORDISH.search(n)] or texts
    same = [n for n in named if a[n] is not None and a[n] == b[n]]
    assert not same, (
        f"users {first!r} and {second!r} share a password and have the same stored {same} "
        f"(value {str(a[same[0]])[:60]!r}): the hash is not salted"
    )
