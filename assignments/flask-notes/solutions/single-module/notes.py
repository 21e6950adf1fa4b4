"""flask-notes in one module: models, sessions, the JSON API and the browser pages.

Sessions are Flask's signed-cookie sessions holding the user's id; there is no
Flask-Login. The schema belongs to the migrations in migrations/.
"""

import os
import re
from functools import wraps
from urllib.parse import urlsplit

from flask import (
    Flask,
    abort,
    g,
    jsonify,
    redirect,
    render_template_string,
    request,
    session,
)
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, select, text
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException
from werkzeug.security import check_password_hash, generate_password_hash

# --- database ------------------------------------------------------------------

db = SQLAlchemy(
    metadata=MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
)
migrate = Migrate()


def word_count(body):
    return len((body or "").split())


class User(db.Model):
    __tablename__ = "users"

    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String(32), unique=True, nullable=False)
    password_hash = db.Column(db.String(255), nullable=False)

    def as_json(self):
        return {"id": self.id, "username": self.username}


class Note(db.Model):
    __tablename__ = "notes"

    id = db.Column(db.Integer, primary_key=True)
    owner_id = db.Column(db.Integer, db.ForeignKey("users.id"), nullable=False, index=True)
    title = db.Column(db.String(200), nullable=False)
    body = db.Column(db.Text, nullable=False, default="")
    word_count = db.Column(db.Integer, nullable=False, default=0, server_default="0")
    likes = db.Column(db.Integer, nullable=False, default=0, server_default="0")

    def set_body(self, body):
        self.body = body
        self.word_count = word_count(body)

    def as_json(self):
        return {
            "id": self.id,
            "title": self.title,
            "body": self.body,
            "word_count": self.word_count,
            "likes": self.likes,
        }


# --- helpers -------------------------------------------------------------------

USERNAME = re.compile(r"[A-Za-z0-9_]{3,32}")


def is_api():
    return request.path == "/api" or request.path.startswith("/api/")


def error(status, message):
    response = jsonify(error=message)
    response.status_code = status
    return response


def current_user():
    """The logged-in user, or None. Looked up once per request."""
    if "user" not in g:
        user_id = session.get("uid")
        g.user = db.session.get(User, user_id) if isinstance(user_id, int) else None
    return g.user


def login_required(view):
    """401 JSON for the API; a redirect to the login form for pages."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if current_user() is None:
            if is_api():
                response = error(401, "not logged in")
                response.headers["WWW-Authenticate"] = 'Cookie realm="notes"'
                return response
            return redirect("/login?next=" + request.path)
        return view(*args, **kwargs)

    return wrapper


def local_path(target):
    """`target` if it is a path on this site, else None (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(c) < 32 or ord(c) == 127 for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def check_credentials(username, password):
    user = db.session.execute(select(User).filter_by(username=username)).scalar_one_or_none()
    if user is not None and check_password_hash(user.password_hash, password):
        return user
    return None


def log_in(user):
    session.clear()
    session["uid"] = user.id


def json_body():
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        abort(400, "send a JSON object")
    return data


def own_note(note_id):
    note = db.session.execute(
        select(Note).where(Note.id == note_id, Note.owner_id == current_user().id)
    ).scalar_one_or_none()
    if note is None:
        abort(404, "no such note")
    return note


def valid_title(value):
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        abort(400, "title must be a non-empty string of at most 200 characters")
    return value


def valid_body(value):
    if not isinstance(value, str):
        abort(400, "body must be a string")
    return value


# --- pages ---------------------------------------------------------------------

LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Log in</title></head>
<body>
<h1>Log in</h1>
{% if message %}<p>{{ message }}</p>{% endif %}
<form method="post" action="/login">
  <input type="hidden" name="next" value="{{ next }}">
  <p><label>Username <input name="username" autocomplete="username"></label></p>
  <p><label>Password <input name="password" type="password" autocomplete="current-password"></label></p>
  <p><button type="submit">Log in</button></p>
</form>
</body></html>
"""

NOTES_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Notes</title></head>
<body>
<h1>{{ user.username }}'s notes</h1>
<ul>
{% for title in titles %}  <li>{{ title }}</li>
{% else %}  <li>No notes yet.</li>
{% endfor %}</ul>
<form method="post" action="/logout"><button type="submit">Log out</button></form>
</body></html>
"""


def register_routes(app):
    # JSON API

    @app.post("/api/register")
    def api_register():
        data = json_body()
        username, password = data.get("username"), data.get("password")
        if not isinstance(username, str) or not USERNAME.fullmatch(username):
            abort(400, "username must be 3-32 letters, digits or underscores")
        if not isinstance(password, str) or len(password) < 8:
            abort(400, "password must be at least 8 characters")
        if db.session.execute(select(User.id).filter_by(username=username)).first():
            return error(409, "username taken")
        user = User(username=username, password_hash=generate_password_hash(password))
        db.session.add(user)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            return error(409, "username taken")
        return jsonify(user.as_json()), 201

    @app.post("/api/login")
    def api_login():
        data = json_body()
        username, password = data.get("username"), data.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            abort(400, "username and password are required")
        user = check_credentials(username, password)
        if user is None:
            return error(401, "wrong username or password")
        log_in(user)
        return jsonify(user.as_json())

    @app.post("/api/logout")
    @login_required
    def api_logout():
        session.clear()
        return "", 204

    @app.get("/api/me")
    @login_required
    def api_me():
        return jsonify(current_user().as_json())

    @app.get("/api/notes")
    @login_required
    def api_list_notes():
        notes = db.session.execute(
            select(Note).where(Note.owner_id == current_user().id).order_by(Note.id)
        ).scalars()
        return jsonify([note.as_json() for note in notes])

    @app.post("/api/notes")
    @login_required
    def api_create_note():
        data = json_body()
        note = Note(owner_id=current_user().id, title=valid_title(data.get("title")))
        note.set_body(valid_body(data.get("body", "")))
        db.session.add(note)
        db.session.commit()
        return jsonify(note.as_json()), 201

    @app.get("/api/notes/<int:note_id>")
    @login_required
    def api_get_note(note_id):
        return jsonify(own_note(note_id).as_json())

    @app.patch("/api/notes/<int:note_id>")
    @login_required
    def api_update_note(note_id):
        note = own_note(note_id)
        data = json_body()
        if "title" in data:
            note.title = valid_title(data["title"])
        if "body" in data:
            note.set_body(valid_body(data["body"]))
        db.session.commit()
        return jsonify(note.as_json())

    @app.delete("/api/notes/<int:note_id>")
    @login_required
    def api_delete_note(note_id):
        db.session.delete(own_note(note_id))
        db.session.commit()
        return "", 204

    @app.post("/api/notes/<int:note_id>/like")
    @login_required
    def api_like_note(note_id):
        # The increment happens in SQL; the write lock taken by the UPDATE is held
        # until the commit, so the SELECT below reads our own increment.
        changed = db.session.execute(
            text("UPDATE notes SET likes = likes + 1 WHERE id = :id AND owner_id = :owner"),
            {"id": note_id, "owner": current_user().id},
        ).rowcount
        if not changed:
            db.session.rollback()
            abort(404, "no such note")
        likes = db.session.execute(
            text("SELECT likes FROM notes WHERE id = :id"), {"id": note_id}
        ).scalar_one()
        db.session.commit()
        return jsonify(likes=likes)

    # Browser pages

    @app.get("/")
    def index():
        return redirect("/notes")

    @app.route("/login", methods=["GET", "POST"])
    def login_page():
        next_url = request.values.get("next", "")
        if request.method == "GET":
            return render_template_string(LOGIN_PAGE, next=next_url, message=None)
        user = check_credentials(request.form.get("username", ""), request.form.get("password", ""))
        if user is None:
            return render_template_string(LOGIN_PAGE, next=next_url, message="Wrong username or password."), 401
        log_in(user)
        return redirect(local_path(next_url) or "/notes")

    @app.get("/notes")
    @login_required
    def notes_page():
        titles = db.session.execute(
            select(Note.title).where(Note.owner_id == current_user().id).order_by(Note.id)
        ).scalars()
        return render_template_string(NOTES_PAGE, user=current_user(), titles=list(titles))

    @app.post("/logout")
    def logout_page():
        session.clear()
        return redirect("/login")

    # Errors: JSON under /api, Flask's HTML pages elsewhere.

    @app.errorhandler(HTTPException)
    def http_error(exc):
        if not is_api():
            return exc
        return error(exc.code or 500, exc.description)

    @app.errorhandler(500)
    def server_error(exc):
        if not is_api():
            return exc
        return error(500, "internal server error")


# --- application factory -------------------------------------------------------


def create_app():
    app = Flask(__name__)
    database_url = os.environ.get("DATABASE_URL")
    secret_key = os.environ.get("SECRET_KEY")
    if not database_url or not secret_key:
        raise RuntimeError("set DATABASE_URL and SECRET_KEY in the environment")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=database_url,
        SECRET_KEY=secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    if database_url.startswith("sqlite"):
        # Four Gunicorn processes share the file: wait for a lock instead of failing.
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"timeout": 30}}
    db.init_app(app)
    migrate.init_app(app, db, render_as_batch=True)
    register_routes(app)
    return app
