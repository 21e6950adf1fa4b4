"""The WSGI entry point `grader serve` hands to Gunicorn: the app over the environment's settings."""

from __future__ import annotations

from grader.settings import Settings
from grader.web import create_app

app = create_app(Settings())
