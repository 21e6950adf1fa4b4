"""Browser pages, behind the session cookie (a bearer token opens none of them)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import quote

from flask import Blueprint, g, redirect, render_template, request, url_for
from sqlalchemy import select

from .auth import authenticate, end_session, session_user, start_session
from .csrf import csrf_ok
from .extensions import db
from .models import Import
from .redirects import safe_next

bp = Blueprint("pages", __name__)


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Without a session: 302 to /login?next=<this page> (a relative Location)."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        user = session_user()
        if user is None:
            target = request.full_path.rstrip("?")
            return redirect("/login?next=" + quote(target, safe="/"), code=302)
        g.user = user
        return view(*args, **kwargs)

    return wrapped


@bp.get("/")
def index():
    return redirect(url_for("pages.imports"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    next_url = request.values.get("next", "")
    if request.method == "GET":
        return render_template("login.html", next_url=next_url, error=None)

    if not csrf_ok():
        return render_template("login.html", next_url=next_url, error="Your form expired; please try again."), 400
    user = authenticate(request.form.get("username", ""), request.form.get("password", ""))
    if user is None:
        return render_template("login.html", next_url=next_url, error="Wrong username or password."), 200
    start_session(user)
    # Only ever a path on this site (no open redirect).
    return redirect(safe_next(next_url) or url_for("pages.imports"), code=302)


@bp.get("/imports")
@login_required
def imports():
    rows = db.session.execute(
        select(Import.id, Import.filename, Import.status).where(Import.user_id == g.user.id).order_by(Import.id)
    ).all()
    return render_template("imports.html", user=g.user, imports=rows)


@bp.post("/logout")
def logout():
    end_session()
    return redirect(url_for("pages.login"), code=302)
