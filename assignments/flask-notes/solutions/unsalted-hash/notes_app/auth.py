"""Flask-Login wiring: who the caller is, and what an anonymous caller gets.

API routes answer 401 JSON; browser pages redirect to the login form.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Flask, Response, jsonify, redirect, request, session
from flask_login import login_user

from .extensions import db, login_manager
from .models import User
from .redirects import is_api_request


def init_auth(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "pages.login"
    login_manager.unauthorized_handler(_unauthorized)


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    try:
        return db.session.get(User, int(user_id))
    except (TypeError, ValueError):
        return None


def _unauthorized() -> Response:
    if is_api_request():
        response = jsonify(error="authentication required: log in with POST /api/login")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Session realm="flask-notes"'
        return response
    # Relative Location with the path kept readable: /login?next=/notes
    target = request.full_path.rstrip("?")
    return redirect("/login?next=" + quote(target, safe="/"), code=302)


def authenticate(username: str, password: str) -> User | None:
    """Return the user when the credentials match, else None."""
    user = db.session.execute(db.select(User).filter_by(username=username)).scalar_one_or_none()
    if user is None or not user.check_password(password):
        return None
    return user


def start_session(user: User) -> None:
    """Log the user in on a fresh session (drops anything kept from before, e.g. an old CSRF token)."""
    session.clear()
    login_user(user)
