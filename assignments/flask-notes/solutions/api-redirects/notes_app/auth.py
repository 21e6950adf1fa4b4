"""Flask-Login wiring: who the caller is. Anonymous callers are sent to the login form."""

from __future__ import annotations

import secrets

from flask import Flask, session
from flask_login import login_user
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import db, login_manager
from .models import User

# Hash of a random password, checked when the username is unknown so that an
# unknown username costs as much time as a wrong password (no probing by timing).
_dummy_hash: str | None = None


def init_auth(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "pages.login"
    login_manager.login_message = "Please log in to continue."


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    try:
        return db.session.get(User, int(user_id))
    except (TypeError, ValueError):
        return None


def authenticate(username: str, password: str) -> User | None:
    """Return the user when the credentials match, else None."""
    global _dummy_hash
    user = db.session.execute(db.select(User).filter_by(username=username)).scalar_one_or_none()
    if user is None:
        if _dummy_hash is None:
            _dummy_hash = generate_password_hash(secrets.token_hex(16))
        check_password_hash(_dummy_hash, password)
        return None
    return user if user.check_password(password) else None


def start_session(user: User) -> None:
    """Log the user in on a fresh session (drops anything kept from before, e.g. an old CSRF token)."""
    session.clear()
    login_user(user)
