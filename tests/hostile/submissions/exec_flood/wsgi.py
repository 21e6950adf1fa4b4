"""HOSTILE: when imported by the Flask CLI (which the hidden suite runs in the container through
`docker exec`: `flask --app wsgi db ...`), it floods stdout. The grader reads that output on the
trusted side; only the last log_bytes are kept, but are the bytes before them ever held?

Capped at 256 MiB per command so that the test does not starve the shared machine; a real attack
would not stop.
"""

import os
import sys

if os.path.basename(sys.argv[0]) == "flask":
    chunk = b"EXEC-FLOOD " + b"B" * (1024 * 1024 - 12) + b"\n"
    for _ in range(256):
        os.write(1, chunk)

from flask import Flask  # noqa: E402

app = Flask(__name__)


@app.get("/login")
def login():
    return '<form method="post"><input name="username"><input name="password"></form>'
