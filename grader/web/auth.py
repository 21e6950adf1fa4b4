"""Logging in and out, and the role checks of the staff pages."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired

from grader.web.users import Role

bp = Blueprint("auth", __name__)
F = TypeVar("F", bound=Callable[..., Any])


class LoginForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


def safe_next(target: str | None) -> str | None:
    """A local path to go to after login, or None: no scheme, no host, no `//` or backslash tricks."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in target):
        return None
    return target


def role_required(*roles: Role) -> Callable[[F], F]:
    """login_required, then 403 unless the user has one of the roles."""

    def decorate(view: F) -> F:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate


staff_required = role_required(Role.admin, Role.reviewer)
admin_required = role_required(Role.admin)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    from grader.web import grader

    form = LoginForm()
    if form.validate_on_submit():
        service, email, address = grader(), form.email.data or "", request.remote_addr or "unknown"
        settings = service.settings
        if service.users.login_failures(email, address, settings.web.login_window_s) >= settings.web.login_attempts:
            minutes = max(1, round(settings.web.login_window_s / 60))
            flash(f"Too many failed logins for this e-mail from your address: try again in {minutes} minutes.")
            return render_template("login.html", form=form), 429
        user = service.users.authenticate(email, form.password.data or "")
        service.users.note_login(email, address, user is not None, settings.web.login_window_s)
        if user is not None:
            login_user(user)
            return redirect(safe_next(request.args.get("next")) or url_for("review.submissions"))
        flash("Wrong e-mail or password.")
    return render_template("login.html", form=form)


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> Response:
    logout_user()
    return redirect(url_for("auth.login"))


@bp.route("/")
def index() -> Response:
    return redirect(url_for("review.submissions"))
