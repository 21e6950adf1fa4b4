"""Entry points: `gunicorn wsgi:app`, `flask --app wsgi ...` and `celery -A wsgi:celery worker`."""

from jobs_app import create_app

app = create_app()
celery = app.extensions["celery"]
