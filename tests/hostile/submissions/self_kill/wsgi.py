"""HOSTILE: on POST /api/register it kills its own container: SIGTERM to PID 1 (the gunicorn
master), then SIGKILL to every process it may signal (kill -1), itself included."""

import os
import signal
import sys


def app(environ, start_response):
    path, method = environ.get("PATH_INFO"), environ.get("REQUEST_METHOD")
    if method == "POST" and path == "/api/register":
        print(f"SELFKILL from pid {os.getpid()}", file=sys.stderr, flush=True)
        os.kill(1, signal.SIGTERM)
        os.kill(-1, signal.SIGKILL)
    if path == "/login":
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"<form></form>"]
    start_response("404 Not Found", [("Content-Type", "application/json")])
    return [b'{"error": "not found"}']
