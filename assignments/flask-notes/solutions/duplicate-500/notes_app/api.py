"""The JSON API under /api. Every route except register and login needs a session."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, jsonify, request, session
from flask_login import current_user, login_required, logout_user
from sqlalchemy import select, update

from .auth import authenticate, start_session
from .errors import api_error
from .extensions import db
from .models import Note, User

bp = Blueprint("api", __name__, url_prefix="/api")

USERNAME_RE = re.compile(r"[A-Za-z0-9_]{3,32}")
PASSWORD_MIN_LENGTH = 8
TITLE_MAX_LENGTH = 200


class InvalidInput(Exception):
    """Invalid client input; answered with 400 JSON."""


class NoteNotFound(Exception):
    """Missing note, or someone else's: answered with the same 404."""


@bp.errorhandler(InvalidInput)
def _invalid_input(exc: InvalidInput):
    return api_error(400, str(exc))


@bp.errorhandler(NoteNotFound)
def _note_not_found(_exc: NoteNotFound):
    return api_error(404, "note not found")


def _json_object() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise InvalidInput("expected a JSON object body with Content-Type: application/json")
    return data


def _string_field(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise InvalidInput(f"'{name}' is required and must be a string")
    return value


def _title(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("'title' is required and must be a non-empty string")
    if len(value) > TITLE_MAX_LENGTH:
        raise InvalidInput(f"'title' must be at most {TITLE_MAX_LENGTH} characters")
    return value


def _body(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidInput("'body' must be a string")
    return value


def _own_note_or_404(note_id: int) -> Note:
    note = db.session.execute(
        select(Note).where(Note.id == note_id, Note.user_id == current_user.id)
    ).scalar_one_or_none()
    if note is None:
        raise NoteNotFound()
    return note


# --- accounts ----------------------------------------------------------------


@bp.post("/register")
def register():
    data = _json_object()
    username = _string_field(data, "username")
    password = _string_field(data, "password")
    if not USERNAME_RE.fullmatch(username):
        raise InvalidInput("'username' must be 3 to 32 characters of letters, digits and underscore")
    if len(password) < PASSWORD_MIN_LENGTH:
        raise InvalidInput(f"'password' must be at least {PASSWORD_MIN_LENGTH} characters")

    taken = db.session.execute(select(User.id).filter_by(username=username)).first()
    if taken is not None:
        return api_error(409, "username already taken")

    user = User(username=username)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return jsonify(user.to_dict()), 201


@bp.post("/login")
def login():
    data = _json_object()
    username = _string_field(data, "username")
    password = _string_field(data, "password")
    user = authenticate(username, password)
    if user is None:
        return api_error(401, "wrong username or password")
    start_session(user)
    return jsonify(user.to_dict()), 200


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    session.clear()  # the response deletes the session cookie
    return Response(status=204)


@bp.get("/me")
@login_required
def me():
    return jsonify(current_user.to_dict())


# --- notes -------------------------------------------------------------------


@bp.get("/notes")
@login_required
def list_notes():
    notes = db.session.execute(
        select(Note).where(Note.user_id == current_user.id).order_by(Note.id)
    ).scalars()
    return jsonify([note.to_dict() for note in notes])


@bp.post("/notes")
@login_required
def create_note():
    data = _json_object()
    title = _title(data.get("title"))
    body = _body(data["body"]) if "body" in data else ""
    note = Note(user_id=current_user.id, title=title, body=body)
    db.session.add(note)
    db.session.commit()
    return jsonify(note.to_dict()), 201


@bp.get("/notes/<int:note_id>")
@login_required
def get_note(note_id: int):
    return jsonify(_own_note_or_404(note_id).to_dict())


@bp.patch("/notes/<int:note_id>")
@login_required
def update_note(note_id: int):
    note = _own_note_or_404(note_id)
    data = _json_object()
    title = _title(data["title"]) if "title" in data else None
    body = _body(data["body"]) if "body" in data else None
    if title is not None:
        note.title = title
    if body is not None:
        note.body = body  # the model recomputes word_count
    db.session.commit()
    return jsonify(note.to_dict())


@bp.delete("/notes/<int:note_id>")
@login_required
def delete_note(note_id: int):
    note = _own_note_or_404(note_id)
    db.session.delete(note)
    db.session.commit()
    return Response(status=204)


@bp.post("/notes/<int:note_id>/like")
@login_required
def like_note(note_id: int):
    # One atomic statement: the database adds the like, so concurrent calls never lose one.
    notes = Note.__table__
    likes = db.session.execute(
        update(notes)
        .where(notes.c.id == note_id, notes.c.user_id == current_user.id)
        .values(likes=notes.c.likes + 1)
        .returning(notes.c.likes)
    ).scalar_one_or_none()
    db.session.commit()
    if likes is None:
        raise NoteNotFound()
    return jsonify(likes=likes)
