"""Who the caller is: bearer tokens for the API (Flask-JWT-Extended), the session for the pages.

Every token problem answers 401 JSON with a `WWW-Authenticate: Bearer ...` header (RFC 6750): the
extension's defaults (422 and a `msg` key for a malformed token, no header) are replaced by the loaders below.
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import Flask, Response, current_app, jsonify, session
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt.exceptions import PyJWTError
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import db, jwt
from .models import MAX_ID, User

REALM = "flask-jobs"
SESSION_USER = "user_id"

# Hash of a random password, checked when the username is unknown, so that an unknown
# username costs as much time as a wrong password (no probing by timing).
_dummy_hash: str | None = None


def bearer_challenge(message: str, error: str | None = None) -> Response:
    """401 JSON with the Bearer challenge; `error` is RFC 6750's code (e.g. invalid_token)."""
    response = jsonify(error=message)
    response.status_code = 401
    challenge = f'Bearer realm="{REALM}"'
    if error:
        challenge += f', error="{error}"'
    response.headers["WWW-Authenticate"] = challenge
    return response


def init_auth(app: Flask) -> None:
    jwt.init_app(app)

    @app.errorhandler(JWTExtendedException)
    def _any_jwt_extended_error(_exc: Exception):
        return bearer_challenge("invalid access token", "invalid_token")

    @app.errorhandler(PyJWTError)
    def _any_pyjwt_error(_exc: Exception):
        return bearer_challenge("invalid access token", "invalid_token")


@jwt.unauthorized_loader
def _no_token(_reason: str) -> Response:
    # No Authorization header, or another scheme than Bearer.
    return bearer_challenge("authentication required: send Authorization: Bearer <token> (POST /api/token)")


@jwt.invalid_token_loader
def _invalid_token(_reason: str) -> Response:
    # Malformed, badly signed, another key, alg none, a non-string sub, a missing claim...
    return bearer_challenge("invalid access token", "invalid_token")


@jwt.expired_token_loader
def _expired_token(_header: dict, _payload: dict) -> Response:
    return bearer_challenge("the access token has expired: get a new one from POST /api/token", "invalid_token")


@jwt.revoked_token_loader
def _revoked_token(_header: dict, _payload: dict) -> Response:
    return bearer_challenge("the access token has been revoked", "invalid_token")


@jwt.needs_fresh_token_loader
def _needs_fresh_token(_header: dict, _payload: dict) -> Response:
    return bearer_challenge("a fresh access token is required", "invalid_token")


@jwt.token_verification_failed_loader
def _verification_failed(_header: dict, _payload: dict) -> Response:
    return bearer_challenge("invalid access token", "invalid_token")


@jwt.user_lookup_error_loader
def _unknown_user(_header: dict, _payload: dict) -> Response:
    return bearer_challenge("the token's user does not exist", "invalid_token")


@jwt.user_lookup_loader
def _token_user(_header: dict, payload: dict) -> User | None:
    return user_by_id(payload.get("sub"))


def user_by_id(value: Any) -> User | None:
    """The user a token's `sub` or the session names, or None (also for a value that is no id)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    try:
        user_id = int(value)
    except ValueError:
        return None
    if not 1 <= user_id <= MAX_ID:
        return None
    return db.session.get(User, user_id)


def authenticate(username: str, password: str) -> User | None:
    """Return the user when the credentials match, else None."""
    global _dummy_hash
    user = db.session.execute(db.select(User).filter_by(username=username)).scalar_one_or_none()
    if user is None:
        if _dummy_hash is None:
            method = current_app.config["PASSWORD_HASH_METHOD"]
            _dummy_hash = generate_password_hash(secrets.token_hex(16), method=method)
        check_password_hash(_dummy_hash, password)
        return None
    return user if user.check_password(password) else None


def start_session(user: User) -> None:
    """Log a browser in on a fresh session (nothing kept from before, e.g. an old CSRF token)."""
    session.clear()
    session[SESSION_USER] = user.id


def end_session() -> None:
    session.clear()


def session_user() -> User | None:
    """The browser's user, from the signed session cookie only (a bearer token never opens a page)."""
    return user_by_id(session.get(SESSION_USER))
