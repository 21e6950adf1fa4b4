"""Settings, read from the environment only (every value may change between two starts)."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

_TRUE = {"1", "true", "yes", "on"}

# Request bodies of 4 MB must get through; JSON escaping of a CSV (quotes, newlines) adds a little.
MAX_REQUEST_BYTES = 8 * 1024 * 1024


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names the variable and what it should hold."""


def load_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the Flask config mapping (with the Celery section under "CELERY").

    `overrides` are merged over the environment-derived values before they are checked; tests use it.
    """
    env = os.environ
    raw: dict[str, Any] = {
        "SECRET_KEY": env.get("SECRET_KEY"),
        "JWT_SECRET_KEY": env.get("JWT_SECRET_KEY"),
        "DATABASE_URL": env.get("DATABASE_URL"),
        "BROKER_URL": env.get("CELERY_BROKER_URL") or env.get("REDIS_URL"),
        "JWT_ACCESS_TOKEN_EXPIRES": env.get("JWT_ACCESS_TOKEN_EXPIRES", "900"),
        "IMPORT_MAX_ERRORS": env.get("IMPORT_MAX_ERRORS", "10"),
        "SESSION_COOKIE_SECURE": env.get("SESSION_COOKIE_SECURE", "").lower() in _TRUE,
    }
    overrides = dict(overrides or {})
    for key in list(raw):
        if key in overrides:
            raw[key] = overrides.pop(key)

    missing = [name for name, key in (
        ("SECRET_KEY", "SECRET_KEY"), ("JWT_SECRET_KEY", "JWT_SECRET_KEY"), ("DATABASE_URL", "DATABASE_URL"),
        ("CELERY_BROKER_URL or REDIS_URL", "BROKER_URL"),
    ) if not raw[key]]
    if missing:
        raise ConfigError(
            f"Missing environment variable(s): {', '.join(missing)}. For example: "
            "DATABASE_URL=postgresql://jobs:secret@127.0.0.1:5432/jobs REDIS_URL=redis://127.0.0.1:6379/0 "
            "SECRET_KEY=<random> JWT_SECRET_KEY=<another random value>."
        )
    if raw["SECRET_KEY"] == raw["JWT_SECRET_KEY"]:
        raise ConfigError("JWT_SECRET_KEY must differ from SECRET_KEY: one signs sessions, the other tokens.")

    expires = _integer("JWT_ACCESS_TOKEN_EXPIRES", raw["JWT_ACCESS_TOKEN_EXPIRES"], minimum=1)
    max_errors = _integer("IMPORT_MAX_ERRORS", raw["IMPORT_MAX_ERRORS"], minimum=0)
    database_url = sqlalchemy_url(raw["DATABASE_URL"])

    config: dict[str, Any] = {
        "SECRET_KEY": raw["SECRET_KEY"],
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": _engine_options(database_url),
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
        "MAX_CONTENT_LENGTH": MAX_REQUEST_BYTES,
        # Browser session: never readable from JavaScript, not sent on cross-site POSTs. Secure is opt-in
        # (SESSION_COOKIE_SECURE=1) so that the app also works when tried over plain HTTP.
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": bool(raw["SESSION_COOKIE_SECURE"]),
        # Access tokens: HS256 with their own key, from the Authorization header only. Setting the key
        # explicitly matters: Flask-JWT-Extended would otherwise sign with SECRET_KEY.
        "JWT_SECRET_KEY": raw["JWT_SECRET_KEY"],
        "JWT_ALGORITHM": "HS256",
        "JWT_DECODE_ALGORITHMS": ["HS256"],
        "JWT_TOKEN_LOCATION": ["headers"],
        "JWT_HEADER_NAME": "Authorization",
        "JWT_HEADER_TYPE": "Bearer",
        "JWT_ACCESS_TOKEN_EXPIRES": timedelta(seconds=expires),
        "JWT_ERROR_MESSAGE_KEY": "error",
        "JWT_COOKIE_CSRF_PROTECT": False,  # tokens travel in headers only: no CSRF claim needed
        "ACCESS_TOKEN_SECONDS": expires,
        "IMPORT_MAX_ERRORS": max_errors,
        "IMPORT_BATCH_SIZE": 1000,
        "PASSWORD_HASH_METHOD": "scrypt",  # Werkzeug's salted scrypt; tests use a cheaper salted method
        "CELERY": celery_config(raw["BROKER_URL"]),
    }
    config.update(overrides)
    return config


def celery_config(broker_url: str) -> dict[str, Any]:
    """The Celery app's settings (lower-case names), read by celery_init_app from app.config["CELERY"]."""
    return {
        "broker_url": broker_url,
        "broker_connection_retry_on_startup": True,
        # An import's state lives in PostgreSQL: no result backend.
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        # Acknowledge after the task ran, and give the message back when the process running it dies:
        # a killed worker's import is taken over by the next one.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # One message reserved per process: a kill strands as few imports as possible.
        "worker_prefetch_multiplier": 1,
        "broker_transport_options": {
            # Over Redis an unacknowledged message comes back once this many seconds have passed since a
            # worker took it (default 3600): a new worker's start-up sweep restores a dead worker's import.
            "visibility_timeout": 30,
            # kombu >= 5.7: also look for such messages every 10 s while running, not only at start-up.
            "unacked_restore_interval": 10,
            "unacked_restore_throttle": 1,
        },
    }


def sqlalchemy_url(url: str) -> str:
    """Name the installed driver (psycopg 3) for a plain postgresql:// URL; other URLs stay as they are."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _engine_options(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        # Tests and local tries on one file: wait for a lock instead of failing.
        return {"connect_args": {"timeout": 30}}
    # No application_name here: the worker's sessions are named by PGAPPNAME, which libpq reads.
    return {"pool_pre_ping": True}


def _integer(name: str, value: Any, minimum: int) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {value!r}.") from None
    if number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {number}.")
    return number
