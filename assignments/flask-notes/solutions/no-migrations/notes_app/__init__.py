"""flask-notes: a small notes service with a JSON API and a few browser pages."""

from __future__ import annotations

from typing import Any

from flask import Flask

from .config import load_config


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Build the application from the environment (DATABASE_URL, SECRET_KEY).

    `overrides` is merged over the environment-derived settings; tests use it.
    Missing tables are created on start-up, so a fresh database works at once.
    """
    app = Flask(__name__)
    app.config.from_mapping(load_config(overrides))

    from . import models  # noqa: F401  (register the models with the metadata)
    from .api import bp as api_bp
    from .auth import init_auth
    from .csrf import init_csrf
    from .errors import init_errors
    from .extensions import db
    from .pages import bp as pages_bp

    db.init_app(app)
    with app.app_context():
        db.create_all()
    init_auth(app)
    init_csrf(app)
    init_errors(app)

    app.register_blueprint(api_bp)
    app.register_blueprint(pages_bp)
    return app
