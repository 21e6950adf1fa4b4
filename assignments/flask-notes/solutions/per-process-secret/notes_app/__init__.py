"""flask-notes: a small notes service with a JSON API and a few browser pages."""

from __future__ import annotations

from typing import Any

from flask import Flask

from .config import load_config


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Build the application from the environment (DATABASE_URL).

    `overrides` is merged over the environment-derived settings; tests use it.
    The schema is owned by the migrations: nothing here creates tables.
    """
    app = Flask(__name__)
    app.config.from_mapping(load_config(overrides))

    from . import models  # noqa: F401  (register the models with the metadata)
    from .api import bp as api_bp
    from .auth import init_auth
    from .csrf import init_csrf
    from .errors import init_errors
    from .extensions import db, migrate
    from .pages import bp as pages_bp

    db.init_app(app)
    migrate.init_app(app, db, render_as_batch=True, compare_type=True)
    init_auth(app)
    init_csrf(app)
    init_errors(app)

    app.register_blueprint(api_bp)
    app.register_blueprint(pages_bp)
    return app
