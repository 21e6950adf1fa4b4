"""The JSON API under /api. Every route except register and token needs `Authorization: Bearer <token>`."""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Blueprint, current_app, jsonify, request, url_for
from flask_jwt_extended import create_access_token, current_user, jwt_required
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .auth import authenticate
from .errors import api_error
from .extensions import db
from .models import FAILED, MAX_ID, Import, User
from .tasks import enqueue_import

bp = Blueprint("api", __name__, url_prefix="/api")
log = logging.getLogger(__name__)

USERNAME_RE = re.compile(r"[A-Za-z0-9_]{3,32}")
PASSWORD_MIN_LENGTH = 8
FILENAME_MAX_LENGTH = 100
DEFAULT_FILENAME = "upload.csv"


class InvalidInput(Exception):
    """Invalid client input; answered with 400 JSON."""


class ImportNotFound(Exception):
    """A missing import, or someone else's: answered with the same 404."""


@bp.errorhandler(InvalidInput)
def _invalid_input(exc: InvalidInput):
    return api_error(400, str(exc))


@bp.errorhandler(ImportNotFound)
def _import_not_found(_exc: ImportNotFound):
    return api_error(404, "import not found")


def _json_object() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise InvalidInput("expected a JSON object body with Content-Type: application/json")
    return data


def _storable(name: str, value: str) -> str:
    """PostgreSQL text holds neither U+0000 nor lone surrogates (JSON can carry both)."""
    if "\x00" in value:
        raise InvalidInput(f"'{name}' must not contain the character U+0000")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"'{name}' must be valid Unicode text (no lone surrogates)") from None
    return value


def _string_field(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise InvalidInput(f"'{name}' is required and must be a string")
    return _storable(name, value)


def _own_import_or_404(import_id: int) -> Import:
    if not 1 <= import_id <= MAX_ID:
        raise ImportNotFound()
    found = db.session.execute(
        select(Import).where(Import.id == import_id, Import.user_id == current_user.id)
    ).scalar_one_or_none()
    if found is None:
        raise ImportNotFound()
    return found


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
    try:
        db.session.commit()
    except IntegrityError:
        # Lost a race with a concurrent registration of the same name: the unique index decided.
        db.session.rollback()
        return api_error(409, "username already taken")
    return jsonify(user.to_dict()), 201


@bp.post("/token")
def token():
    data = _json_object()
    username = _string_field(data, "username")
    password = _string_field(data, "password")
    user = authenticate(username, password)
    if user is None:
        return api_error(401, "wrong username or password")
    access_token = create_access_token(identity=str(user.id))  # `sub` must be a string
    return jsonify(
        access_token=access_token,
        token_type="Bearer",
        expires_in=current_app.config["ACCESS_TOKEN_SECONDS"],
    ), 200


@bp.get("/me")
@jwt_required()
def me():
    return jsonify(current_user.to_dict())


# --- imports -----------------------------------------------------------------


@bp.post("/imports")
@jwt_required()
def create_import():
    data = _json_object()
    csv_text = data.get("csv")
    if not isinstance(csv_text, str) or not csv_text:
        raise InvalidInput("'csv' is required and must be a non-empty string")
    _storable("csv", csv_text)
    filename = data.get("filename")
    if filename is None:
        filename = DEFAULT_FILENAME
    if not isinstance(filename, str) or not 1 <= len(filename) <= FILENAME_MAX_LENGTH:
        raise InvalidInput(f"'filename' must be a string of 1 to {FILENAME_MAX_LENGTH} characters")
    _storable("filename", filename)

    created = Import(user_id=current_user.id, filename=filename, csv_text=csv_text)
    db.session.add(created)
    db.session.commit()  # the worker must find the import: queue its task only once it is committed
    try:
        enqueue_import(created.id)
    except Exception:  # the broker is unreachable: say so, and leave no import that nothing will run
        log.exception("could not queue import %s", created.id)
        created.status = FAILED
        created.error = "the import could not be queued; upload it again"
        db.session.commit()
        return api_error(503, "the import queue is unavailable; try again in a moment")

    response = jsonify(created.to_dict())
    response.status_code = 202
    # External URL from the forwarded scheme and host (ProxyFix): https://<public host>/api/imports/<id>
    response.headers["Location"] = url_for("api.get_import", import_id=created.id, _external=True)
    return response


@bp.get("/imports")
@jwt_required()
def list_imports():
    found = db.session.execute(
        select(Import).where(Import.user_id == current_user.id).order_by(Import.id)
    ).scalars()
    return jsonify([item.to_dict() for item in found])


@bp.get("/imports/<int:import_id>")
@jwt_required()
def get_import(import_id: int):
    return jsonify(_own_import_or_404(import_id).to_dict())
