"""WSGI entry point: `gunicorn wsgi:app` and `flask --app wsgi ...` both use it."""

from notes_app import create_app

app = create_app()
