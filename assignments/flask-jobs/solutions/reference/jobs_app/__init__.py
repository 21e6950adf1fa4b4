"""flask-jobs: CSV imports over a JSON API with bearer tokens, run by a Celery worker; a few pages behind a login."""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import load_config


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Build the application (and its Celery app, in app.extensions["celery"]) from the environment.

    `overrides` is merged over the environment-derived settings; tests use it.
    The schema is owned by the migrations: nothing here creates tables or connects to the database.
    """
    app = Flask(__name__)
    app.config.from_mapping(load_config(overrides))
    # One proxy (Nginx) in front: the public scheme and host come from its X-Forwarded-Proto/-Host.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]

    from . import models  # noqa: F401  (register the models with the metadata)
    from .api import bp as api_bp
    from .auth import init_auth
    from .celery_app import celery_init_app
    from .csrf import init_csrf
    from .errors import init_errors
    from .extensions import db, migrate
    from .pages import bp as pages_bp

    db.init_app(app)
    migrate.init_app(app, db, compare_type=True, render_as_batch=True)
    init_auth(app)
    init_csrf(app)
    init_errors(app)
    celery_init_app(app)

    app.register_blueprint(api_bp)
    app.register_blueprint(pages_bp)
    return app
