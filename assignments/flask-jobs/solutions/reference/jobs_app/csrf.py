"""A small session-based CSRF token for the browser forms (the JSON API does not use it).

The token lives in the signed session cookie and is echoed by forms in a hidden
`csrf_token` input; a POST is accepted only when both match.
"""

from __future__ import annotations

import hmac
import secrets

from flask import Flask, request, session

_SESSION_KEY = "csrf_token"


def init_csrf(app: Flask) -> None:
    app.jinja_env.globals["csrf_token"] = csrf_token


def csrf_token() -> str:
    """The session's token, created on first use."""
    token = session.get(_SESSION_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[_SESSION_KEY] = token
    return token


def csrf_ok() -> bool:
    """True when the submitted form carries the session's token."""
    expected = session.get(_SESSION_KEY)
    submitted = request.form.get(_SESSION_KEY, "")
    if not isinstance(expected, str) or not expected or not submitted:
        return False
    return hmac.compare_digest(expected.encode(), submitted.encode())
