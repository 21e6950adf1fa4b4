"""HOSTILE (in .gitmodules): an ext:: submodule that would run a command and a file:// one that
would copy a host repository. Neither may be fetched; this prints what the image holds."""

import os
import sys

for name in ("evil", "vendored"):
    path = os.path.join("/app", name)
    listing = sorted(os.listdir(path)) if os.path.isdir(path) else "missing"
    print(f"SUBMODULE {name}: {listing}", file=sys.stderr, flush=True)


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/login":
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"<form></form>"]
    start_response("404 Not Found", [("Content-Type", "application/json")])
    return [b'{"error": "not found"}']
