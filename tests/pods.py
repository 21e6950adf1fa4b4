"""`svc`: a test-only assignment whose pods hold PostgreSQL, Redis and Nginx (and, if asked, a worker), with an
app that reports what it sees of them, for the integration and hostile tests of pods with services."""

from __future__ import annotations

from pathlib import Path

TOML = """\
id = "svc"
title = "An app with PostgreSQL, Redis and Nginx"
version = "1"

[run]
setup = []
serve = "gunicorn --workers 2 --bind 127.0.0.1:8000 wsgi:app"
port = 8080
app_port = 8000
services = ["postgresql", "redis", "nginx"]
ready_path = "/ready"

[[categories]]
id = "one"
title = "First lane"
weight = 1

[[categories]]
id = "two"
title = "Second lane"
weight = 1
lane = "second"
"""
APP = '''
import os

import psycopg
import redis
from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/ready")
def ready():
    return "ready"


@app.get("/")
def facts():
    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        database, user = conn.execute("SELECT current_database(), current_user").fetchone()
    hits = redis.Redis.from_url(os.environ["REDIS_URL"]).incr("hits")
    return jsonify(database=database, user=user, hits=hits, proto=request.headers.get("X-Forwarded-Proto"),
                   forwarded_host=request.headers.get("X-Forwarded-Host"), host=request.host)
'''
REQUIREMENTS = "flask==3.1.2\ngunicorn==23.0.0\npsycopg[binary]==3.2.10\nredis==6.4.0\n"




def write_services_assignment(root: Path, worker: str = "") -> Path:
    """An assignments folder holding only `svc` (with `worker`, a `[run.worker]` table, appended); returns it."""
    folder = root / "assignments" / "svc"
    (folder / "tests").mkdir(parents=True)
    (folder / "assignment.toml").write_text(TOML + worker)
    (folder / "brief.md").write_text("# svc\n")
    for name in ("test_one.py", "test_two.py"):
        (folder / "tests" / name).write_text("def test_nothing():\n    pass\n")
    return folder.parent
