"""The grader's web app: `create_app(settings)`, with one blueprint per audience.

| blueprint | prefix | who |
|---|---|---|
| auth | /login, /logout | staff (administrators and reviewers) |
| candidate | /i/<invitation token>, /s/<status token> | candidates, by unguessable link only |
| review | /submissions, /compare, /invitations, /tokens | reviewers and administrators |
| cohort | /assignments/<assignment>/cohort, /assignments/<assignment>/similar/<a>/<b> | reviewers and administrators |
| admin | /admin | administrators |
| api | /api | scripts, with `Authorization: Bearer <token>`; 401 JSON, never a redirect |

Every error under /api answers JSON (grader.web.errors); pages answer HTML. The records each request needs are
small classes over the one SQLAlchemy database engine: `users`, `tokens`, `invitations` (grader.web), `webhooks`,
the `cohort` (grader.cohort.store) and the submissions `store`; submitting, regrading and deleting go through
grader.submissions, as the CLI's do.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, redirect, request, url_for
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect
from jinja2 import ChoiceLoader, FileSystemLoader, PackageLoader
from werkzeug.wrappers import Response

from grader.cohort.store import CohortStore
from grader.db.engine import open_store
from grader.db.store import Store
from grader.settings import Settings
from grader.storage import Storage, open_storage
from grader.submissions import Enqueue, redis_enqueue
from grader.web.errors import is_api_request, register_error_handlers
from grader.web.invitations import Invitations
from grader.web.tokens import ApiTokens, new_token
from grader.web.users import User, Users
from grader.webhooks import Webhooks

csrf = CSRFProtect()


def secret_key(settings: Settings) -> str:
    """The configured key, or one random key kept in data_dir/web-secret, shared by every web process."""
    if settings.web.secret_key:
        return settings.web.secret_key.get_secret_value()
    path = Path(settings.paths.data_dir) / "web-secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(new_token())
    return path.read_text().strip()


def create_app(
    settings: Settings, *, store: Store | None = None, enqueue: Enqueue | None = None, storage: Storage | None = None,
) -> Flask:
    """The web app over the submissions database of `settings`; `enqueue` defaults to the Redis queue, `storage`
    (where reports and kept code are read, never a worker's disk) to the one `settings.storage` names."""
    from grader.web import admin, api, auth, candidate, cohort, review

    app = Flask(__name__)
    # the reviewer's page includes the standalone report's partials (grader/templates) beside its own templates
    app.jinja_loader = ChoiceLoader([FileSystemLoader(Path(__file__).parent / "templates"), PackageLoader("grader", "templates")])
    app.config.update(
        SECRET_KEY=secret_key(settings),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.web.session_cookie_secure,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=64 * 1024,
        WTF_CSRF_TIME_LIMIT=None,
    )
    store = store or open_store(settings)
    app.extensions["grader"] = Grader(settings, store, enqueue or redis_enqueue(settings), storage or open_storage(settings))

    login = LoginManager(app)
    login.login_view = "auth.login"
    login.login_message = "Log in to see this page."
    login.session_protection = "strong"

    @login.user_loader
    def _load_user(user_id: str) -> User | None:
        return grader().users.user(int(user_id)) if user_id.isdigit() else None

    @login.unauthorized_handler
    def _unauthorized() -> Response | tuple[Response, int]:
        if is_api_request():
            return api.unauthorized()
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))

    csrf.init_app(app)
    csrf.exempt(api.bp)  # token-authenticated, never by cookie
    register_error_handlers(app)

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        response.headers.setdefault("Referrer-Policy", "no-referrer")  # links carry tokens
        return response

    for blueprint in (auth.bp, candidate.bp, review.bp, cohort.bp, admin.bp, api.bp):
        app.register_blueprint(blueprint)
    return app


class Grader:
    """What every request needs, held by the app (never a global): settings, the records, the queue, the storage."""

    def __init__(self, settings: Settings, store: Store, enqueue: Enqueue, storage: Storage) -> None:
        self.settings = settings
        self.store = store
        self.storage = storage
        self.users = Users(store.engine)
        self.tokens = ApiTokens(store.engine)
        self.invitations = Invitations(store.engine)
        self.webhooks = Webhooks(store.engine)
        self.cohort = CohortStore(store.engine)
        self.enqueue = enqueue


def grader() -> Grader:
    from flask import current_app

    return current_app.extensions["grader"]  # type: ignore[no-any-return]
