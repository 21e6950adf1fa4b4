"""Browser pages: the login form, the notes list, logout. Anonymous visitors are sent to /login."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, logout_user
from sqlalchemy import select

from .auth import authenticate, start_session
from .csrf import csrf_ok
from .extensions import db
from .models import Note

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    return redirect(url_for("pages.notes"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    next_url = request.values.get("next", "")
    if request.method == "GET":
        return render_template("login.html", next_url=next_url, error=None)

    if not csrf_ok():
        return (
            render_template("login.html", next_url=next_url, error="Your form expired; please try again."),
            400,
        )
    user = authenticate(request.form.get("username", ""), request.form.get("password", ""))
    if user is None:
        return (
            render_template("login.html", next_url=next_url, error="Wrong username or password."),
            200,
        )
    start_session(user)
    # Back to the page that sent the visitor to the login form, if any.
    return redirect(next_url or url_for("pages.notes"), code=302)


@bp.get("/notes")
@login_required
def notes():
    titles = db.session.execute(
        select(Note.title).where(Note.user_id == current_user.id).order_by(Note.id)
    ).scalars()
    return render_template("notes.html", titles=list(titles))


@bp.post("/logout")
def logout():
    logout_user()
    session.clear()
    return redirect(url_for("pages.login"), code=302)
