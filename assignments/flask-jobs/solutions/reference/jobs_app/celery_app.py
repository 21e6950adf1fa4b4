"""The Celery app, initialised with the Flask app (Flask's `celery_init_app` pattern).

Configured from app.config["CELERY"]; every task runs inside `app.app_context()`, so it sees the same
configuration and database as the web app.
"""

from __future__ import annotations

from celery import Celery, Task
from celery.signals import worker_process_init
from flask import Flask

from .extensions import db


def celery_init_app(app: Flask) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.set_default()
    app.extensions["celery"] = celery_app

    def _fresh_connections(**_kwargs: object) -> None:
        # A prefork child must never use a connection its parent opened: start with an empty pool.
        with app.app_context():
            db.engine.dispose(close=False)

    worker_process_init.connect(_fresh_connections, weak=False)

    from . import tasks  # noqa: F401  (registers the tasks with this Celery app)

    return celery_app
